import type { InspectionEvent } from "xstate"
import type { SupervisorEmitted, SupervisorEvent } from "../../machines/supervisor.machine.js"
import type { HistoryEntry, SessionView } from "../records/buildRecords.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"

/** One event for the feed: its topic, type and data. */
export interface FeedItem {
  readonly topic: "queue" | "daemon"
  readonly type: string
  readonly data: Record<string, unknown>
}

/**
 * What the root's own events say to the feed's operators: the queue's comings
 * and goings, drain mode, the daemon ready. Read from the root's inspection
 * (the events it received from outside the tree) and its emitted events, so
 * nothing in the daemon publishes them by hand.
 */
export const feedOfRootEvent = (inspection: InspectionEvent, pid: number): FeedItem | null => {
  if (inspection.type !== "@xstate.event" || inspection.sourceRef !== undefined) return null
  if ((inspection.actorRef as { systemId?: string }).systemId !== "supervisor") return null
  const event = inspection.event as SupervisorEvent
  switch (event.type) {
    case "ENQUEUED":
      return event.item === undefined
        ? null
        : { topic: "queue", type: "queue.enqueued", data: { bead: event.item.bead, profile: event.item.profile, priority: event.item.priority, seq: event.item.seq, retry: event.item.retry } }
    case "DEQUEUED":
      return { topic: "queue", type: "queue.removed", data: { bead: event.bead } }
    case "DRAIN":
      return { topic: "daemon", type: event.on ? "daemon.draining" : "daemon.admitting", data: {} }
    case "START":
      return { topic: "daemon", type: "daemon.ready", data: { pid, restored: event.restored ?? [] } }
    default:
      return null
  }
}

/** The root's emitted events the feed reports. */
export const feedOfRootEmitted = (emitted: SupervisorEmitted): FeedItem | null =>
  emitted.type === "admit" ? { topic: "queue", type: "queue.admitted", data: { bead: emitted.item.bead } } : null

/** A session entered a state: what the feed (`session.state`) says of it. */
export const sessionStateData = (bead: string, profile: string, view: SessionView, entry: HistoryEntry) => {
  const c = view.context
  return {
    bead,
    state: view.state,
    at: new Date(entry.at).toISOString(),
    attempt: c.attempt,
    attempt_id: c.attemptId,
    profile,
    outcome: c.outcome,
    failure_reason: c.failureReason,
    decision: c.claim,
    waiting: c.waiting,
    will_retry: c.willRetry
  }
}

/** Both records of a bead are on disk: what the feed (`records.written`) says of them. */
export const recordsWrittenData = (run: RunRecord, result: ResultRecord) => ({
  bead: run.bead,
  status: run.status,
  lifecycle_state: run.lifecycle_state,
  run_file: result.run_file,
  result_file: run.result_file,
  reason: result.reason
})
