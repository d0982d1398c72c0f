import { Effect, Either, Schema } from "effect"
import { isFinalState } from "../../machines/agentSession.types.js"
import { formatIssues } from "../config/formatIssues.js"
import { localDate, memoryLine } from "../records/buildRecords.js"
import { RecordStore } from "../records/RecordStore.js"
import type { RunRecord } from "../records/recordSchema.js"
import { DispatchBody } from "../sessions/dispatchBody.js"
import { finalizeLostRun, runIsLive } from "../sessions/reconcile.js"
import { supervisorAlive } from "../sessions/supervisorLiveness.js"
import { Terminals } from "../terminals/Terminals.js"
import { AgentProcesses } from "../processes/agentProcesses.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import type { SessionSnapshot } from "./SnapshotStore.js"
import type { QuarantinedFile } from "./stateFiles.js"
import { WorkQueue } from "./WorkQueue.js"

/** The dispatch request a snapshot holds, decoded again (a snapshot is a file: what it says is checked, never trusted). */
export const requestOfSnapshot = (snapshot: SessionSnapshot): Either.Either<DispatchBody, string> =>
  Schema.decodeUnknownEither(DispatchBody, { errors: "all" })(snapshot.request).pipe(
    Either.mapLeft((issue) => `its request is not a dispatch request: ${formatIssues(issue).map((i) => `${i.path === "" ? "(body)" : i.path}: ${i.message}`).join("; ")}`)
  )

/**
 * A snapshot that outlived its session: the actor had ended, or the records
 * say this very attempt finished (the daemon died between writing them and
 * removing the snapshot). Its `status` says done from the verification on; the
 * lifecycle ends after cleaning, notifying and remembering. Never run again.
 */
export const snapshotOutlivedSession = (snapshot: SessionSnapshot, record: RunRecord | null): boolean => {
  const actor = snapshot.actor as { status?: string; value?: unknown; context?: { attempt?: number; attemptId?: string | null } }
  const finished =
    record !== null &&
    isFinalState(record.lifecycle_state) &&
    !record.will_retry &&
    record.attempt_id === (actor.context?.attemptId ?? null) &&
    record.attempt === Math.max(1, actor.context?.attempt ?? 0)
  return finished || actor.status === "done" || isFinalState(String(actor.value))
}

/**
 * A bead whose snapshot was quarantined cannot be resumed: if its records say
 * it was under way, its tmux session is ended (no agent runs on unseen, and a
 * new dispatch cannot run beside it) and its records are finalized as failed,
 * saying why. Gives what the feed says of the records, or null when there was
 * nothing to end.
 */
export const endUnresumable = (
  paths: WorkspacePaths,
  bead: string,
  q: QuarantinedFile,
  log: (message: string, detail?: Record<string, unknown>) => void
) =>
  endUnsupervisable(paths, bead, `its snapshot ${q.file} was corrupt (${q.reason}; moved to ${q.moved_to}), so the daemon could not resume it`, log).pipe(
    Effect.tap((ended) => Effect.sync(() => ended !== null && log("session ended: its snapshot was corrupt", { bead, session: ended.session, moved_to: q.moved_to })))
  )

/**
 * A bead the daemon can no longer supervise (its snapshot is corrupt, its
 * session actor failed): if its records say it is under way, its tmux
 * session is ended and its records are finalized as failed, `cause` first in
 * the reason. Gives what the feed says of the records, or null when there
 * was nothing to end.
 */
export const endUnsupervisable = (
  paths: WorkspacePaths,
  bead: string,
  cause: string,
  log: (message: string, detail?: Record<string, unknown>) => void
) =>
  Effect.gen(function* () {
    const records = yield* RecordStore
    yield* Effect.flatMap(WorkQueue, (queue) => queue.remove(bead)).pipe(Effect.ignore)
    const run = yield* records.readRun(bead).pipe(Effect.orElseSucceed(() => null))
    if (run === null || !runIsLive(run) || (run.supervisor.pid !== process.pid && supervisorAlive(run.supervisor))) return null
    yield* Effect.flatMap(Terminals, (terminals) => terminals.kill(run.session_name)).pipe(Effect.ignore)
    // And whatever of the attempt left the session's process group (its cgroup, its marked environment).
    if (run.attempt_id !== null) yield* Effect.flatMap(AgentProcesses, (processes) => processes.reap(run.attempt_id!))
    const now = Date.now()
    const result = yield* records.readResult(bead).pipe(Effect.orElseSucceed(() => null))
    const lost = finalizeLostRun(paths, run, result, now)
    const reason = `${cause}: it ended the tmux session ${run.session_name}; ${lost.result.reason}`
    const withReason = <T extends { completion: unknown; evidence: ReadonlyArray<unknown> }>(record: T): T => {
      const decision = { ...(record.completion as object), detail: { ...((record.completion as { detail?: object }).detail ?? {}), reason } }
      return { ...record, completion: decision, evidence: [...record.evidence.slice(0, -1), decision] }
    }
    const final = { run: withReason(lost.run), result: { ...withReason(lost.result), reason } }
    yield* Effect.zipRight(records.write(final.run, final.result), records.appendMemory(localDate(now), memoryLine(final.run, final.result))).pipe(
      Effect.catchAll((error) => Effect.sync(() => log("records of an unsupervisable session not finalized", { bead, reason: error.message })))
    )
    return { bead, session: run.session_name, status: final.run.status, lifecycle_state: final.run.lifecycle_state, reason }
  })
