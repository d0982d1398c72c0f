import type { AnyStateMachine } from "xstate"
import { agentSessionMachine } from "../../machines/agentSession.machine.js"
import { argusMachine } from "../../machines/argus.machine.js"
import { serviceMachine } from "../../machines/service.machine.js"
import { supervisorMachine } from "../../machines/supervisor.machine.js"

/**
 * Every machine in `machines/`, by the name `warden viz` takes: the
 * visualizer renders these definitions themselves, so a picture cannot drift
 * from the code. A new machine file is added here (the viz test checks each).
 */
export const MACHINES: Readonly<Record<string, AnyStateMachine>> = {
  agentSession: agentSessionMachine,
  supervisor: supervisorMachine,
  service: serviceMachine,
  argus: argusMachine
}

export const machineNames: ReadonlyArray<string> = Object.keys(MACHINES)

/** The machine of that name, or null. */
export const machineNamed = (name: string): AnyStateMachine | null => (Object.hasOwn(MACHINES, name) ? MACHINES[name]! : null)
