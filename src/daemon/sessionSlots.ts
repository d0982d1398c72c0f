import type { SupervisorEvent } from "../../machines/supervisor.machine.js"
import { flattenState } from "../records/buildRecords.js"

/** What the root's observer remembers of one session child between its snapshots. */
export interface FollowedSession {
  readonly bead: string
  readonly profile: string
  /** Restored from a persisted snapshot (a daemon restart). */
  readonly restored: boolean
  holdsSlot: boolean
  state: string | null
}

/** A session child's snapshot, as far as slots and the queue care. */
export interface SlotSnapshot {
  readonly value: unknown
  readonly context: { readonly attempt: number }
  hasTag(tag: string): boolean
}

/**
 * Follows one session child for the root: its slot from its `holdsSlot` tag
 * (ADOPTED when it comes, RELEASED when it goes or the session is over), and
 * its place in the queue (a retry goes back into it; so does a restored
 * session that was waiting there). The root's observer calls this with every
 * snapshot of the child; `requeue` puts the bead in the queue and wakes the
 * root.
 */
export const followSession = (
  session: FollowedSession,
  snapshot: SlotSnapshot,
  root: { send(event: SupervisorEvent): void },
  requeue: (retry: boolean) => void
): void => {
  const state = flattenState(snapshot.value)
  const first = session.state === null
  const entered = state !== session.state
  session.state = state
  const holds = snapshot.hasTag("holdsSlot")
  if (holds && !session.holdsSlot) root.send({ type: "ADOPTED", bead: session.bead, profile: session.profile })
  if (!holds && session.holdsSlot) root.send({ type: "RELEASED", bead: session.bead })
  session.holdsSlot = holds
  if (state === "queued" && entered && (snapshot.context.attempt > 0 || (first && session.restored))) requeue(snapshot.context.attempt > 0)
  if (snapshot.hasTag("final")) root.send({ type: "RELEASED", bead: session.bead })
}
