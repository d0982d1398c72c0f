import { Schema } from "effect"

/**
 * The run and result records: every field of the seed's schema version 1
 * (same names, types and meanings, see ../shared/RECORDS.md), then Warden's
 * additions. `config/run-record.schema.json` and
 * `config/result-record.schema.json` are generated from these.
 */

const IsoTime = Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/))
/**
 * The seed's timestamp: exactly `date -u +%Y-%m-%dT%H:%M:%SZ` (whole seconds,
 * `Z`). Its run analyzer parses it with `strptime("%Y-%m-%dT%H:%M:%SZ")`, which
 * rejects a fraction: every seed field uses this; Warden's finer times go in
 * its own fields.
 */
const SeedTime = Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/))
const NullableInt = Schema.NullOr(Schema.Int)
export const SeedStatus = Schema.Literal("running", "done", "failed", "timeout")
export const WardenOutcome = Schema.Literal("done", "failed", "timeout", "cancelled")

export const CheckRecord = Schema.Struct({
  name: Schema.String,
  status: Schema.Literal("pass", "fail", "skipped"),
  duration_ms: Schema.Int,
  exit_code: NullableInt,
  output_tail: Schema.String,
  detail: Schema.String
})

export const VerificationRecord = Schema.Struct({
  lint: Schema.Literal("pass", "fail", "skipped"),
  tests: Schema.Literal("pass", "fail", "skipped"),
  ubs: Schema.Literal("clean", "issues", "skipped"),
  lint_details: Schema.NullOr(Schema.Array(Schema.String)),
  overall: Schema.Literal("pass", "fail"),
  checks: Schema.Array(CheckRecord),
  diff_stat: Schema.String,
  new_commits: Schema.Array(Schema.String),
  verified_at: IsoTime
})
export type VerificationRecord = typeof VerificationRecord.Type

export const DecisionRecord = Schema.Struct({
  kind: Schema.String,
  source: Schema.String,
  at: IsoTime,
  detail: Schema.Unknown
})
export type DecisionRecord = typeof DecisionRecord.Type

export const AttemptRecord = Schema.Struct({
  attempt: Schema.Int,
  attempt_id: Schema.NullOr(Schema.String),
  outcome: WardenOutcome,
  failure_reason: Schema.NullOr(Schema.String),
  started_at: Schema.NullOr(IsoTime),
  finished_at: Schema.NullOr(IsoTime),
  completion: Schema.NullOr(DecisionRecord),
  output_summary: Schema.NullOr(Schema.String),
  exit_code: NullableInt
})

const Extras = {
  /** `started_at` to the millisecond (the seed's field has whole seconds). */
  started_at_precise: IsoTime,
  /** `finished_at` to the millisecond, null while running. */
  finished_at_precise: Schema.NullOr(IsoTime),
  /** Unique per attempt, across retries and restarts; the agent sees it as `WARDEN_ATTEMPT`. */
  attempt_id: Schema.NullOr(Schema.String),
  /** The agent profile used (`demo`, `claude-tui`, a custom one); `agent` stays the CLI family. */
  profile: Schema.String,
  /** Warden's own outcome of this attempt, null while it runs. */
  outcome: Schema.NullOr(WardenOutcome),
  /** The lifecycle state the session is in (`running.waitingInput`, `verifying`, `done`, ...). */
  lifecycle_state: Schema.String,
  /** The decision that ended the attempt: source, time and what it saw. */
  completion: Schema.NullOr(DecisionRecord),
  /** Every decision of this attempt (stalled, waiting-input, resumed, done, ...), oldest first. */
  evidence: Schema.Array(DecisionRecord),
  /** Signals that were ignored, and why. */
  ignored_signals: Schema.Array(Schema.Struct({ at: IsoTime, reason: Schema.String, signal: Schema.Unknown })),
  /** The session's states with the time it entered each, across all attempts. */
  state_history: Schema.Array(Schema.Struct({ state: Schema.String, at: IsoTime, attempt: Schema.Int })),
  previous_attempts: Schema.Array(AttemptRecord),
  transcript_path: Schema.NullOr(Schema.String),
  final_message: Schema.NullOr(Schema.String),
  /** Token usage and cost when the agent reports them (null otherwise). */
  usage: Schema.NullOr(Schema.Unknown),
  cost_usd: Schema.NullOr(Schema.Number),
  /** How the notifying step told the coordinator of this attempt (the configured command's delivery of the wake text), or null. */
  notify: Schema.NullOr(Schema.Struct({ channel: Schema.Literal("command"), ok: Schema.Boolean, detail: Schema.String, text: Schema.String, at: IsoTime })),
  /** Who supervises the session: the daemon or a foreground `dispatch --wait`. */
  supervisor: Schema.Struct({
    pid: Schema.Int,
    proc_start: Schema.NullOr(Schema.String),
    host: Schema.String,
    kind: Schema.String,
    started_at: IsoTime
  }),
  updated_at: IsoTime
}

export const RunRecord = Schema.Struct({
  schema_version: Schema.Literal(1),
  bead: Schema.String,
  agent: Schema.String,
  model: Schema.NonEmptyString,
  repo: Schema.String,
  prompt: Schema.String,
  prompt_hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  started_at: SeedTime,
  finished_at: Schema.NullOr(SeedTime),
  duration_seconds: NullableInt,
  status: SeedStatus,
  attempt: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  max_retries: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  session_name: Schema.String,
  result_file: Schema.String,
  exit_code: NullableInt,
  output_summary: Schema.NullOr(Schema.String),
  failure_reason: Schema.NullOr(Schema.String),
  template_name: Schema.NullOr(Schema.String),
  prompt_full: Schema.String,
  verification: Schema.NullOr(VerificationRecord),
  ...Extras,
  will_retry: Schema.Boolean,
  base_commit: Schema.NullOr(Schema.String),
  preflight: Schema.NullOr(
    Schema.Array(Schema.Struct({ name: Schema.String, ok: Schema.Boolean, detail: Schema.String, advisory: Schema.optional(Schema.Boolean) }))
  )
})
export type RunRecord = typeof RunRecord.Type

export const ResultRecord = Schema.Struct({
  schema_version: Schema.Literal(1),
  bead: Schema.String,
  agent: Schema.String,
  status: SeedStatus,
  reason: Schema.NonEmptyString,
  started_at: SeedTime,
  finished_at: Schema.NullOr(SeedTime),
  duration_seconds: NullableInt,
  attempt: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  max_retries: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  will_retry: Schema.Boolean,
  exit_code: NullableInt,
  session_name: Schema.String,
  output_summary: Schema.NullOr(Schema.String),
  verification: Schema.NullOr(VerificationRecord),
  ...Extras,
  failure_reason: Schema.NullOr(Schema.String),
  run_file: Schema.String
})
export type ResultRecord = typeof ResultRecord.Type
