import { createHash } from "node:crypto"
import type { Decision, SessionContext, VerifyOutput } from "../../machines/agentSession.types.js"
import type { ResolvedProfile } from "../config/profiles.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import type { DecisionRecord, ResultRecord, RunRecord, VerificationRecord } from "./recordSchema.js"
import { sessionNameFor } from "../terminals/Terminals.js"

/**
 * What a bead's records show of its dispatch: the part of the session's
 * `DispatchSpec` (src/sessions) that the records are built from. Declared here
 * so that the records do not depend on the sessions that write them.
 */
export interface RecordedSpec {
  readonly bead: string
  readonly profile: ResolvedProfile
  /** The rendered prompt, or why it could not be rendered (preflight reports it). */
  readonly prompt: { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string }
  readonly templateName: string | null
  readonly paths: WorkspacePaths
  readonly supervisor: { readonly pid: number; readonly procStart: string | null; readonly host: string; readonly kind: "foreground" | "daemon"; readonly startedAt: number }
}

/** One entry of the session's state history, kept by the observer. */
export interface HistoryEntry {
  readonly state: string
  readonly at: number
  readonly attempt: number
}

export interface SessionView {
  /** The flattened state value: `running.waitingInput`, `verifying`, `done`. */
  readonly state: string
  /** The session is over: its snapshot is in a final state (tagged `final`). */
  readonly final: boolean
  readonly context: SessionContext
}

export const iso = (ms: number): string => new Date(ms).toISOString()
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms))

/** The seed's timestamp, `date -u +%Y-%m-%dT%H:%M:%SZ`: whole seconds (truncated, as `date` does), no fraction. */
export const seedTime = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")

/** The seed's `duration_seconds`: the difference of the two whole-second times, as its shell computes it from `date +%s`. */
export const seedDuration = (startedMs: number, finishedMs: number): number => Math.max(0, Math.floor(finishedMs / 1000) - Math.floor(startedMs / 1000))

/** Flattens an XState state value (`{ running: "stalled" }`) to `running.stalled`. */
export const flattenState = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value !== null && typeof value === "object") {
    const [key, inner] = Object.entries(value)[0] ?? ["?", null]
    return inner === null || (typeof inner === "object" && Object.keys(inner as object).length === 0) ? key : `${key}.${flattenState(inner)}`
  }
  return String(value)
}

const decisionRecord = (decision: Decision | null): DecisionRecord | null =>
  decision === null ? null : { kind: decision.kind, source: decision.source, at: iso(decision.at), detail: decision.detail }

/** The seed's `verification` object, with Warden's checks, diff stat and commits beside its keys. */
export const verificationRecord = (verification: VerifyOutput): VerificationRecord => {
  const byKey = (key: string) => verification.checks.find((check) => check.name === key)
  const seedStatus = (key: string): "pass" | "fail" | "skipped" => byKey(key)?.status ?? "skipped"
  const lint = byKey("lint")
  return {
    lint: seedStatus("lint"),
    tests: seedStatus("tests"),
    ubs: byKey("ubs") === undefined || byKey("ubs")!.status === "skipped" ? "skipped" : byKey("ubs")!.status === "pass" ? "clean" : "issues",
    lint_details: lint !== undefined && lint.status === "fail" ? lint.outputTail.split("\n").filter((l) => l !== "").slice(-20) : null,
    overall: verification.overall,
    checks: verification.checks.map((check) => ({
      name: check.name,
      status: check.status,
      duration_ms: check.durationMs,
      exit_code: check.exitCode,
      output_tail: check.outputTail,
      detail: check.detail
    })),
    diff_stat: verification.diffStat,
    new_commits: [...verification.newCommits],
    verified_at: iso(verification.at)
  }
}

/** The seed's `status`: only its four words; cancelled is `failed` with reason `cancelled`. */
const seedStatus = (view: SessionView): RunRecord["status"] => {
  const outcome = view.context.outcome
  const settled = view.final || ["cleaning", "notifying", "remembering", "settling", "backoff"].includes(view.state)
  if (!settled || outcome === null) return view.state === "cancelled" ? "failed" : "running"
  if (outcome === "done") return "done"
  if (outcome === "timeout") return "timeout"
  return "failed"
}

/** A sentence for a person: how the attempt ended, or where it is. */
export const reasonText = (view: SessionView): string => {
  const c = view.context
  const status = seedStatus(view)
  if (status === "running") {
    if (view.state === "running.waitingInput") return `waiting for input: ${c.waiting?.detail.line ?? c.waiting?.detail.summary ?? "the agent asked a question"}`
    return `in progress: ${view.state}`
  }
  if (c.outcome === "cancelled") return "cancelled"
  const claim = c.claim
  if (c.outcome === "done") return `done (${claim?.source ?? "?"}), verification passed`
  if (c.failureReason === "verification-failed") {
    const failed = c.verification?.checks.filter((check) => check.status === "fail").map((check) => `${check.name}: ${check.detail}`) ?? []
    return `verification failed: ${failed.join("; ") || "a check failed"}`
  }
  if (c.failureReason === "timeout") return `timeout: ${claim?.detail.reason ?? "deadline passed"}`
  const detail = claim?.detail.reason ?? claim?.detail.summary ?? claim?.detail.line ?? null
  return `${c.failureReason ?? "failed"}${detail ? `: ${detail}` : ""}`
}

export const promptHash = (prompt: string): string => createHash("sha256").update(prompt).digest("hex")

/** Builds both records of the bead from the session's current view (pure). */
export const buildRecords = (
  spec: RecordedSpec,
  view: SessionView,
  history: ReadonlyArray<HistoryEntry>,
  now: number,
  repoPath: string
): { run: RunRecord; result: ResultRecord } => {
  const c = view.context
  const prompt = spec.prompt.ok ? spec.prompt.text : ""
  const status = seedStatus(view)
  const startedAt = c.attemptStartedAt ?? history[0]?.at ?? now
  const finishedAt = status === "running" ? null : (c.finishedAt ?? now)
  const duration = finishedAt === null ? null : seedDuration(startedAt, finishedAt)
  const failureReason = status === "failed" || status === "timeout" ? (c.failureReason ?? "failed") : null
  const verification = c.verification === null ? null : verificationRecord(c.verification)
  const attempt = Math.max(1, c.attempt)
  const common = {
    schema_version: 1 as const,
    bead: spec.bead,
    agent: spec.profile.agent,
    started_at: seedTime(startedAt),
    finished_at: finishedAt === null ? null : seedTime(finishedAt),
    duration_seconds: duration,
    status,
    attempt,
    max_retries: c.policy.retry.maxAttempts,
    session_name: c.launch?.sessionName ?? sessionNameFor(spec.bead),
    exit_code: c.exitCode,
    output_summary: c.capture?.outputSummary ?? null,
    verification,
    started_at_precise: iso(startedAt),
    finished_at_precise: isoOrNull(finishedAt),
    attempt_id: c.attemptId,
    profile: spec.profile.name,
    outcome: status === "running" ? null : c.outcome,
    lifecycle_state: view.state,
    completion: decisionRecord(c.claim),
    evidence: c.evidence.map((d) => decisionRecord(d)!),
    ignored_signals: c.ignored.map((ignored) => ({ at: iso(ignored.at), reason: ignored.reason, signal: ignored.signal })),
    state_history: history.map((entry) => ({ state: entry.state, at: iso(entry.at), attempt: entry.attempt })),
    previous_attempts: c.attempts.map((a) => ({
      attempt: a.attempt,
      attempt_id: a.attemptId,
      outcome: a.outcome,
      failure_reason: a.failureReason,
      started_at: isoOrNull(a.startedAt),
      finished_at: isoOrNull(a.finishedAt),
      completion: decisionRecord(a.decision),
      output_summary: a.outputSummary,
      exit_code: a.exitCode
    })),
    transcript_path: c.launch?.transcriptPath ?? null,
    final_message: c.finalMessage,
    usage: c.usage,
    cost_usd: c.costUsd,
    // Restored snapshots from before this field carry none.
    notify: (c.notifyDelivery ?? null) === null ? null : { ...c.notifyDelivery!, at: iso(c.notifyDelivery!.at) },
    supervisor: {
      pid: spec.supervisor.pid,
      proc_start: spec.supervisor.procStart,
      host: spec.supervisor.host,
      kind: spec.supervisor.kind,
      started_at: iso(spec.supervisor.startedAt)
    },
    updated_at: iso(now),
    will_retry: c.willRetry && status !== "running"
  }
  const run: RunRecord = {
    ...common,
    model: spec.profile.model,
    repo: repoPath,
    prompt: prompt.slice(0, 200),
    prompt_hash: promptHash(prompt),
    result_file: spec.paths.resultFile(spec.bead),
    failure_reason: failureReason,
    template_name: spec.templateName,
    prompt_full: prompt,
    base_commit: c.launch?.baseCommit ?? null,
    preflight: c.preflight === null ? null : c.preflight.checks.map((check) => ({ ...check }))
  }
  const result: ResultRecord = {
    ...common,
    reason: reasonText(view),
    failure_reason: failureReason,
    run_file: spec.paths.runFile(spec.bead)
  }
  return { run, result }
}

/** The seed's memory line for a finished attempt. */
export const memoryLine = (run: RunRecord, result: ResultRecord): string =>
  `- Bead \`${run.bead}\`: agent=${run.agent}, attempt=${run.attempt}/${run.max_retries}, status=${run.status}, duration=${run.duration_seconds ?? 0}s, will_retry=${result.will_retry}, reason=${result.reason}`

/** The server's local date, `YYYY-MM-DD`, for the memory file's name. */
export const localDate = (ms: number): string => {
  const d = new Date(ms)
  const pad = (n: number) => String(n).padStart(2, "0")
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}
