import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { iso, localDate, memoryLine, seedDuration, seedTime } from "../records/buildRecords.js"
import { RecordStore } from "../records/RecordStore.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { Terminals } from "../terminals/Terminals.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { supervisorAlive } from "./supervisorLiveness.js"

/** A run still under way: an attempt is running, or another one is coming (a retry waiting out its backoff). */
export const runIsLive = (run: Pick<RunRecord, "status" | "will_retry">): boolean => run.status === "running" || run.will_retry

/** How `warden ps` sees a run after checking its supervisor and its tmux session. */
export interface ObservedRun {
  readonly run: RunRecord
  /** `supervised`: its supervisor runs; `unsupervised`: the supervisor is gone but the agent still runs in tmux; `finished`: the record is final. */
  readonly liveness: "supervised" | "unsupervised" | "awaiting-daemon" | "finished"
  /** Set when this look found a stale `running` record and finalized it. */
  readonly reconciled: boolean
}

const readJson = (file: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
  } catch {
    // missing or torn: no record to reconcile
    return null
  }
}

/**
 * Finalizes the records of a run whose supervisor died and whose tmux session
 * is gone, from what the attempt left behind (its exit file, its status
 * file). Never `done`: nothing verified the work (`warden verify` can).
 */
export const finalizeLostRun = (
  paths: WorkspacePaths,
  run: RunRecord,
  result: ResultRecord | null,
  now: number,
  paneExitStatus: number | null = null
) => {
  const attemptId = run.attempt_id
  const exit = attemptId === null ? null : readJson(paths.exitFile(run.bead, attemptId))
  const exitCode = exit !== null && exit.attempt_id === attemptId && typeof exit.exit_code === "number" ? exit.exit_code : paneExitStatus
  const status = readJson(paths.statusFile(run.bead))
  const statusMatches = status !== null && (status.attempt_id === undefined || status.attempt_id === attemptId)
  const trace =
    exitCode !== null
      ? `the agent exited ${exitCode}`
      : statusMatches && typeof status!.status === "string"
        ? `the agent's status file says ${status!.status}`
        : "the agent left no exit code or status"
  const finishedOk = exitCode === 0 || (statusMatches && status!.status === "done")
  const failureReason = finishedOk ? "unverified" : "session-lost"
  const reason = finishedOk
    ? `the supervisor (pid ${run.supervisor.pid}) died and ${trace}; the work was not verified: run \`warden verify ${run.bead}\``
    : `session-lost: the supervisor (pid ${run.supervisor.pid}) died and the tmux session is gone; ${trace}`
  // The run ended when the agent exited (its exit file says when), not when this was noticed.
  const exitedAt = exit !== null && exit.attempt_id === attemptId && typeof exit.at === "string" ? Date.parse(exit.at) : NaN
  const endedAt = Number.isFinite(exitedAt) && exitedAt <= now ? exitedAt : now
  const at = iso(now)
  const decision = {
    kind: "failed",
    source: "session-lost",
    at,
    detail: { reason, exitCode, status: statusMatches ? status : null }
  }
  const finished = {
    status: "failed" as const,
    outcome: "failed" as const,
    finished_at: seedTime(endedAt),
    finished_at_precise: iso(endedAt),
    duration_seconds: seedDuration(Date.parse(run.started_at_precise ?? run.started_at), endedAt),
    exit_code: exitCode,
    failure_reason: failureReason,
    lifecycle_state: "failed",
    completion: decision,
    evidence: [...run.evidence, decision],
    state_history: [...run.state_history, { state: "failed", at, attempt: run.attempt }],
    will_retry: false,
    updated_at: at
  }
  const newRun: RunRecord = { ...run, ...finished }
  const newResult: ResultRecord = {
    ...(result ?? {
      ...run,
      reason,
      run_file: paths.runFile(run.bead)
    }),
    ...finished,
    reason
  } as ResultRecord
  return { run: newRun, result: newResult }
}

/**
 * Every run, checked against the world: a `running` record whose supervisor
 * is gone is shown as still running in tmux, or finalized when the session
 * is gone too. A dead watcher never leaves a run `running` forever.
 */
export const observeRuns = (paths: WorkspacePaths) =>
  Effect.gen(function* () {
    const records = yield* RecordStore
    const terminals = yield* Terminals
    const { runs } = yield* records.listRuns
    const observed: ObservedRun[] = []
    for (const run of runs) {
      if (!runIsLive(run)) {
        observed.push({ run, liveness: "finished", reconciled: false })
        continue
      }
      if (supervisorAlive(run.supervisor)) {
        observed.push({ run, liveness: "supervised", reconciled: false })
        continue
      }
      // The daemon kept a snapshot: its next start re-adopts the session and reconciles it itself.
      if (run.supervisor.kind === "daemon" && fs.existsSync(path.join(paths.daemon.snapshots, `${run.bead}.json`))) {
        observed.push({ run, liveness: "awaiting-daemon", reconciled: false })
        continue
      }
      const now = Date.now()
      if (run.status !== "running") {
        // Its supervisor died during the backoff: the retry it announced will not come.
        const at = new Date(now).toISOString()
        const note = `; the retry did not run: its supervisor (pid ${run.supervisor.pid}) died`
        const result = yield* records.readResult(run.bead).pipe(Effect.catchAll(() => Effect.succeed(null)))
        const final = { ...run, will_retry: false, updated_at: at }
        if (result !== null) yield* records.write(final, { ...result, will_retry: false, updated_at: at, reason: `${result.reason}${note}` })
        observed.push({ run: final, liveness: "finished", reconciled: true })
        continue
      }
      const info = yield* terminals.info(run.session_name).pipe(Effect.catchAll(() => Effect.succeed(null)))
      if (info !== null && !info.dead) {
        observed.push({ run, liveness: "unsupervised", reconciled: false })
        continue
      }
      // Re-read: the supervisor may have finished the record since the listing.
      const fresh = yield* records.readRun(run.bead).pipe(Effect.catchAll(() => Effect.succeed(run)))
      if (fresh !== null && fresh.status !== "running") {
        observed.push({ run: fresh, liveness: "finished", reconciled: false })
        continue
      }
      // A dead pane is kept by tmux for capture only; nobody is left to clean it up.
      if (info !== null) yield* terminals.kill(run.session_name).pipe(Effect.ignore)
      const result = yield* records.readResult(run.bead).pipe(Effect.catchAll(() => Effect.succeed(null)))
      const final = finalizeLostRun(paths, run, result, now, info?.deadStatus ?? null)
      yield* records.write(final.run, final.result)
      yield* records.appendMemory(localDate(now), memoryLine(final.run, final.result)).pipe(Effect.ignore)
      observed.push({ run: final.run, liveness: "finished", reconciled: true })
    }
    return observed
  })
