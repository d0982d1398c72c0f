import { Effect } from "effect"
import { runningDaemon } from "../daemon/runningDaemon.js"
import { callDaemon } from "./daemonClient.js"
import { CliError, type CliEnvironment } from "./environment.js"

interface CycleView {
  readonly at: string
  readonly decider: string
  readonly assessment?: string
  readonly observations: { readonly memory_used_percent: number; readonly disk_used_percent: number; readonly load1: number; readonly orphans: ReadonlyArray<unknown> }
  readonly decisions: ReadonlyArray<{ readonly action: unknown; readonly target: unknown; readonly source: string; readonly verdict: string; readonly reason: string }>
}

const printCycle = (cycle: CycleView) => {
  const o = cycle.observations
  process.stdout.write(
    `${cycle.at}  memory ${o.memory_used_percent}%  disk ${o.disk_used_percent}%  load ${o.load1.toFixed(2)}  orphans ${o.orphans.length}  decisions ${cycle.decisions.length}\n`
  )
  if (cycle.decider !== "rules") process.stdout.write(`  decided by ${cycle.decider}\n`)
  if (cycle.assessment !== undefined) process.stdout.write(`  assessment: ${cycle.assessment.replace(/\s+/g, " ")}\n`)
  for (const d of cycle.decisions) process.stdout.write(`  ${d.verdict.padEnd(8)} ${String(d.action).padEnd(16)} ${String(d.target).padEnd(24)} ${d.source.padEnd(6)} ${d.reason}\n`)
}

/** `warden argus [--json] [--once]`: Argus's last cycles, or a cycle run now. */
export const argusCommand = (env: CliEnvironment, once: boolean, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* new CliError({ message: "no warden daemon runs for this workspace: Argus runs in `warden daemon`" })
    if (once) {
      const cycle = (yield* callDaemon(env.paths, daemon, "POST", "/v1/argus/cycle", {})) as unknown as CycleView
      if (json) return void process.stdout.write(`${JSON.stringify(cycle, null, 2)}\n`)
      return printCycle(cycle)
    }
    const answer = (yield* callDaemon(env.paths, daemon, "GET", "/v1/argus")) as unknown as { enabled: boolean; cycles: ReadonlyArray<CycleView> }
    if (json) return void process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`)
    if (!answer.enabled) return void process.stdout.write("Argus is not enabled (argus.enabled in the config)\n")
    if (answer.cycles.length === 0) return void process.stdout.write("Argus has run no cycle yet (`warden argus --once` runs one now)\n")
    for (const cycle of answer.cycles) printCycle(cycle)
  })
