import type { InspectionEvent } from "xstate"

/**
 * The machine-level events of the actor tree, as the feed carries them (topic
 * `machines`) and each bead's history keeps them: a state entered, an event
 * received, per actor. Made from the root's inspection events (Stately's
 * inspector gets the raw ones, converted by its own package: statelyInspection.ts).
 */
export type MachineEvent =
  | {
      readonly kind: "state"
      /** The actor's system id (`supervisor`, `session:<bead>`) or, for an actor without one, its session id. */
      readonly actor: string
      readonly session_id: string
      readonly root_id: string
      /** The snapshot's state value, as XState gives it (a string, or an object for nested states). */
      readonly value: unknown
      readonly status: string
      /** The event that led there. */
      readonly event: string
      /** The state's tags (`holdsSlot`, `final`). */
      readonly tags: ReadonlyArray<string>
      readonly at: number
    }
  | {
      readonly kind: "event"
      readonly actor: string
      readonly session_id: string
      readonly root_id: string
      /**
       * Who sent it: an actor's system id (`supervisor`, `session:<bead>`), or for an actor a state invoked its id
       * (`0.agentSession.running`); null for the world outside the tree (the daemon, the API).
       */
      readonly source: string | null
      /** The event's type and its time; payloads stay out (operator text, screens: they are in the records where they belong). */
      readonly event: { readonly type: string; readonly at?: number }
      /** High-rate events of this actor (agent output, memory readings) seen since its last event here: counted, not listed. */
      readonly coalesced: number
      readonly at: number
    }

/** Events that arrive many times a second or every few seconds: counted into the next listed event, never listed one by one. */
export const HIGH_RATE_EVENTS: ReadonlySet<string> = new Set(["AGENT.OUTPUT", "MEMORY"])

interface ActorLike {
  readonly sessionId: string
  readonly systemId?: string
  readonly id: string
}

const actorName = (ref: ActorLike): string => ref.systemId ?? ref.sessionId

/** The bead a machine event belongs to, from its actor's name (`session:<bead>`), or null for the root and other actors. */
export const beadOfActor = (actor: string): string | null => (actor.startsWith("session:") ? actor.slice("session:".length) : null)

const stateKey = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value))

/**
 * Turns inspection events into machine events: a snapshot only when its actor
 * entered a new state (or changed status), an event unless it is high-rate.
 * Only machines are followed (the root and its session children), not the
 * promise and callback actors they invoke.
 */
export class MachineEventSource {
  private readonly lastState = new Map<string, string>()
  private readonly coalesced = new Map<string, number>()

  constructor(private readonly now: () => number = Date.now) {}

  take(inspection: InspectionEvent): MachineEvent | null {
    if (inspection.type === "@xstate.snapshot") {
      const ref = inspection.actorRef as unknown as ActorLike & { logic?: { config?: unknown } }
      const snapshot = inspection.snapshot as { value?: unknown; status?: string; tags?: Set<string> }
      if (!isMachine(ref) || snapshot.value === undefined) return null
      const actor = actorName(ref)
      const key = `${snapshot.status}:${stateKey(snapshot.value)}`
      if (this.lastState.get(ref.sessionId) === key) return null
      this.lastState.set(ref.sessionId, key)
      if (snapshot.status !== "active") this.lastState.delete(ref.sessionId)
      return {
        kind: "state",
        actor,
        session_id: ref.sessionId,
        root_id: inspection.rootId,
        value: snapshot.value,
        status: snapshot.status ?? "active",
        event: inspection.event.type,
        tags: [...(snapshot.tags ?? [])].sort(),
        at: this.now()
      }
    }
    if (inspection.type === "@xstate.event") {
      const ref = inspection.actorRef as unknown as ActorLike
      if (!isMachine(ref)) return null
      const type = inspection.event.type
      if (HIGH_RATE_EVENTS.has(type)) {
        this.coalesced.set(ref.sessionId, (this.coalesced.get(ref.sessionId) ?? 0) + 1)
        return null
      }
      const coalesced = this.coalesced.get(ref.sessionId) ?? 0
      this.coalesced.delete(ref.sessionId)
      const at = (inspection.event as { at?: unknown }).at
      const source = inspection.sourceRef as unknown as ActorLike | undefined
      return {
        kind: "event",
        actor: actorName(ref),
        session_id: ref.sessionId,
        root_id: inspection.rootId,
        source: source === undefined ? null : (source.systemId ?? source.id),
        event: typeof at === "number" ? { type, at } : { type },
        coalesced,
        at: this.now()
      }
    }
    return null
  }
}

/** A state machine actor (its logic has a machine config), not a promise or callback actor. */
const isMachine = (ref: unknown): boolean => {
  const logic = (ref as { logic?: { config?: unknown; root?: unknown } }).logic
  return logic !== undefined && logic.config !== undefined && logic.root !== undefined
}
