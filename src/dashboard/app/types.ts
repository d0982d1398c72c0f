/** The daemon's answers the page reads: only the fields it shows (the README's "HTTP API" and src/records/recordSchema.ts). */

export interface DecisionRecord {
  readonly kind: string
  readonly source: string
  readonly at: string
  readonly detail: unknown
}

export interface CheckRecord {
  readonly name: string
  readonly status: string
  readonly duration_ms: number
  readonly exit_code: number | null
  readonly output_tail: string
  readonly detail: string
}

export interface AttemptRecord {
  readonly attempt: number
  readonly outcome: string
  readonly failure_reason: string | null
  readonly started_at: string | null
  readonly finished_at: string | null
  readonly completion: DecisionRecord | null
  readonly output_summary: string | null
  readonly exit_code: number | null
}

/** A run record (`state/runs/<bead>.json`), as `GET /v1/sessions` lists it. */
export interface RunRecord {
  readonly bead: string
  readonly profile: string
  readonly repo: string
  readonly status: string
  readonly attempt: number
  readonly max_retries: number
  readonly lifecycle_state: string
  readonly outcome: string | null
  readonly failure_reason: string | null
  readonly started_at_precise: string
  readonly finished_at_precise: string | null
  readonly duration_seconds: number | null
  readonly completion: DecisionRecord | null
  readonly evidence: ReadonlyArray<DecisionRecord>
  readonly previous_attempts: ReadonlyArray<AttemptRecord>
  readonly verification: { readonly overall: string; readonly checks: ReadonlyArray<CheckRecord>; readonly diff_stat: string } | null
  readonly output_summary: string | null
  readonly template_name: string | null
  readonly final_message: string | null
  readonly cost_usd: number | null
  readonly unreadable?: boolean
}

export interface QueueItem {
  readonly bead: string
  readonly profile: string
  readonly priority: number
  readonly seq: number
}

export interface ServiceView {
  readonly name: string
  readonly mode: string
  readonly state: string
  readonly pid: number | null
  readonly restarts: number
  readonly last_exit: { readonly code: number | null; readonly signal: string | null } | null
  readonly health: { readonly ok: boolean; readonly detail: string } | null
  readonly since: string | null
}

export interface ArgusDecision {
  readonly action: unknown
  readonly target: unknown
  readonly source: string
  readonly verdict: string
  readonly reason: string
}

export interface ArgusCycle {
  readonly at: string
  readonly decider: string
  readonly assessment?: string
  readonly decisions: ReadonlyArray<ArgusDecision>
}

// The server's own shapes, as types only (nothing of the server is bundled): one declaration each.
import { FINAL_STATES as LIFECYCLE_FINAL_STATES } from "../../../machines/agentSession.types.js"
import type { ReplayStep, StepDecision } from "../../viz/replay.js"
import type { GroupSummary as HistoryGroup, RunSummary as HistoryRun } from "../../server/dashboardData.js"
export type { HistoryGroup, HistoryRun, ReplayStep, StepDecision }

export interface HistoryAnswer {
  readonly runs: ReadonlyArray<HistoryRun>
  readonly by_profile: ReadonlyArray<HistoryGroup>
  readonly by_template: ReadonlyArray<HistoryGroup>
}

/** A feed message: an event (with `seq`) or a control message (`hello`, `heartbeat`, `gap`, `reset`). */
export interface FeedMessage {
  readonly v: number
  readonly seq?: number
  readonly topic?: string
  readonly type: string
  readonly data?: any
}

/** The lifecycle's final states: a session in one has no live terminal. */
export const FINAL_STATES: ReadonlySet<string> = new Set(LIFECYCLE_FINAL_STATES)
