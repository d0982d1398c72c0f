/**
 * The domain of the agent session lifecycle (`agentSession.machine.ts`): its
 * context, events, actor inputs and outputs, decisions and policies. Types
 * only, plus the list of final states, so `src/` can import them without the
 * machine.
 */

/** Where a completion (or a non-completion decision) came from. */
export type DecisionSource =
  | "signal"
  | "hook"
  | "notify"
  | "status-file"
  | "marker"
  | "idle-prompt"
  | "exit"
  | "deadline"
  | "stall-timer"
  | "dialog"
  | "operator"
  | "preflight"
  | "launch"
  | "verification"
  | "session-lost"

/** Completion sources a profile may enable. */
export type CompletionSource = "signal" | "status-file" | "marker" | "idle-prompt" | "exit"

/** How an attempt ended, in Warden's own words (the seed's `status` is derived from it). */
export type Outcome = "done" | "failed" | "timeout" | "cancelled"

/**
 * The lifecycle's final states, one per outcome, for code that compares state
 * names read from records or persisted snapshots. A live snapshot says it with
 * its tag instead: `snapshot.hasTag("final")`.
 */
export const FINAL_STATES: ReadonlyArray<Outcome> = ["done", "failed", "timeout", "cancelled"]

/** Whether a state name (a record's `lifecycle_state`, a persisted snapshot's value) is a final state. */
export const isFinalState = (state: string): state is Outcome => (FINAL_STATES as ReadonlyArray<string>).includes(state)

/**
 * The lifecycle's state tags. `final`: the session is over. `holdsSlot`: the
 * session holds one of the supervisor's concurrency slots (from its admission
 * until it enters `cleaning`); read it with `snapshot.hasTag("holdsSlot")`.
 */
export type SessionTag = "final" | "holdsSlot"

/** Machine-readable failure reasons; the retry policy lists which ones it retries. */
export type FailureReason =
  | "preflight-failed"
  | "launch-failed"
  | "agent-failed"
  | "agent-exited"
  | "session-lost"
  | "timeout"
  | "verification-failed"
  | "cancelled"

/** One decision with what it saw: the evidence an operator reads in `warden show`. */
export interface Decision {
  readonly kind: "done" | "failed" | "timeout" | "cancelled" | "stalled" | "waiting-input" | "resumed"
  readonly source: DecisionSource
  readonly at: number
  readonly detail: {
    readonly summary?: string | null
    readonly exitCode?: number | null
    readonly screen?: ReadonlyArray<string>
    readonly line?: string
    readonly payload?: unknown
    readonly reason?: string
  }
}

/** What an agent's structured output said about its work (final message, token usage, cost). */
export interface AgentReport {
  readonly finalMessage?: string | null
  readonly usage?: Readonly<Record<string, unknown>> | null
  readonly costUsd?: number | null
}

/** A completion report from the agent itself: `warden signal`, the status file, a hook. */
export interface AgentSignal {
  readonly attemptId: string | null
  readonly status: "done" | "failed" | "waiting"
  readonly summary: string | null
  /** `signal`: `warden signal`; `hook`: a Claude Code hook; `notify`: Codex's notify; `status-file`: the seed's file. */
  readonly source: "signal" | "hook" | "notify" | "status-file"
  readonly at: number
  readonly payload?: unknown
}

export interface RetryPolicy {
  /** The most attempts a bead gets (the seed's `max_retries`; 2 means one retry). */
  readonly maxAttempts: number
  readonly backoffInitialMs: number
  readonly backoffFactor: number
  readonly backoffMaxMs: number
  readonly retryOn: ReadonlyArray<FailureReason>
}

export interface SessionPolicy {
  readonly timeoutMs: number
  readonly stallMs: number
  readonly retry: RetryPolicy
  readonly sources: ReadonlyArray<CompletionSource>
}

export interface PreflightCheck {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
  /** A failed advisory check is reported but does not stop the attempt (a TUI dialog that will wait for an answer). */
  readonly advisory?: boolean
}

export interface PreflightOutput {
  readonly at: number
  readonly attemptId: string
  readonly ok: boolean
  readonly checks: ReadonlyArray<PreflightCheck>
}

export interface LaunchOutput {
  readonly at: number
  readonly ok: boolean
  readonly error: string | null
  readonly sessionName: string
  readonly transcriptPath: string | null
  readonly baseCommit: string | null
  readonly screen: ReadonlyArray<string>
  /** Byte offset of the bead's signal log when the attempt launched: older lines are not this attempt's. */
  readonly signalsOffset: number
  /** A dialog showed before the agent was ready: the prompt is typed once it is answered and the agent is ready. */
  readonly promptPending: boolean
}

export interface CaptureOutput {
  readonly at: number
  readonly outputSummary: string | null
  readonly screen: ReadonlyArray<string>
  /** What the agent's structured output reported, read from the whole transcript. */
  readonly report: AgentReport | null
}

export interface VerificationCheck {
  readonly name: string
  readonly status: "pass" | "fail" | "skipped"
  readonly durationMs: number
  readonly exitCode: number | null
  readonly outputTail: string
  readonly detail: string
}

export interface VerifyOutput {
  readonly at: number
  readonly overall: "pass" | "fail"
  readonly checks: ReadonlyArray<VerificationCheck>
  readonly diffStat: string
  readonly newCommits: ReadonlyArray<string>
}

export interface StepOutput {
  readonly at: number
}

/** How the `notifying` step reached the coordinator: the configured command's delivery of the wake text (a failure never fails the bead). */
export interface NotifyDelivery {
  readonly channel: "command"
  readonly ok: boolean
  readonly detail: string
  readonly text: string
  readonly at: number
}

/** The `notify` actor's output: its time, and the delivery when a command is configured. */
export interface NotifyOutput extends StepOutput {
  readonly delivery: NotifyDelivery | null
}

/** What an earlier attempt showed, kept so a retry does not erase it. */
export interface AttemptSummary {
  readonly attempt: number
  readonly attemptId: string | null
  readonly outcome: Outcome
  readonly failureReason: FailureReason | null
  readonly startedAt: number | null
  readonly finishedAt: number | null
  readonly decision: Decision | null
  readonly outputSummary: string | null
  readonly exitCode: number | null
}

export interface IgnoredSignal {
  readonly at: number
  readonly reason: string
  readonly signal: AgentSignal
}

export interface SessionInput {
  readonly bead: string
  readonly policy: SessionPolicy
}

export interface SessionContext {
  readonly bead: string
  readonly policy: SessionPolicy
  /** Latest time the machine has seen (from the last event or actor output). */
  readonly now: number
  readonly attempt: number
  readonly attemptId: string | null
  readonly attemptStartedAt: number | null
  readonly deadlineAt: number | null
  readonly finishedAt: number | null
  readonly lastOutputAt: number | null
  readonly backoffUntil: number | null
  readonly preflight: PreflightOutput | null
  readonly launch: LaunchOutput | null
  /** What completion detection decided for this attempt, before verification. */
  readonly claim: Decision | null
  readonly capture: CaptureOutput | null
  readonly verification: VerifyOutput | null
  readonly outcome: Outcome | null
  readonly failureReason: FailureReason | null
  readonly exitCode: number | null
  readonly finalMessage: string | null
  /** Token usage the agent reported (its own words, kept as given), and its cost in USD. */
  readonly usage: Readonly<Record<string, unknown>> | null
  readonly costUsd: number | null
  readonly waiting: Decision | null
  readonly evidence: ReadonlyArray<Decision>
  readonly ignored: ReadonlyArray<IgnoredSignal>
  readonly attempts: ReadonlyArray<AttemptSummary>
  readonly willRetry: boolean
  /** The notifying step's delivery for this attempt, when a command is configured. */
  readonly notifyDelivery: NotifyDelivery | null
  readonly cancelRequested: boolean
}

export type SessionEvent =
  | { readonly type: "ADMIT"; readonly at: number }
  /** Sent once to a session restored from a snapshot: timers are not persisted, so it re-arms them. */
  | { readonly type: "RESUME"; readonly at: number }
  | { readonly type: "CANCEL"; readonly at: number; readonly reason?: string }
  | { readonly type: "AGENT.SIGNAL"; readonly signal: AgentSignal }
  | { readonly type: "AGENT.OUTPUT"; readonly at: number }
  | { readonly type: "AGENT.MARKER"; readonly at: number; readonly line: string; readonly status: "done" | "failed" }
  | { readonly type: "AGENT.IDLE"; readonly at: number; readonly screen: ReadonlyArray<string> }
  | { readonly type: "AGENT.DIALOG"; readonly at: number; readonly text: string; readonly screen: ReadonlyArray<string> }
  | { readonly type: "AGENT.DIALOG_CLEARED"; readonly at: number }
  | {
      readonly type: "AGENT.EXITED"
      readonly at: number
      readonly exitCode: number | null
      readonly lost: boolean
      /** When the agent exited, as its exit file says; earlier than `at` when it was noticed late (after a restart). */
      readonly exitedAt?: number | null
    }
  | { readonly type: "AGENT.REPORT"; readonly at: number; readonly report: AgentReport }
  | { readonly type: "AGENT.INPUT"; readonly at: number; readonly text: string }
  | { readonly type: "AGENT.DELIVERY_FAILED"; readonly at: number; readonly reason: string; readonly screen: ReadonlyArray<string> }

/** What the `watchAgent` actor is told: everything it needs to watch one attempt. */
export interface WatchInput {
  readonly bead: string
  readonly attemptId: string
  readonly attempt: number
  readonly sessionName: string
  readonly transcriptPath: string | null
  readonly sources: ReadonlyArray<CompletionSource>
  readonly since: number
  readonly signalsOffset: number
  readonly promptPending: boolean
}

export interface AttemptRef {
  readonly bead: string
  readonly attempt: number
  readonly attemptId: string | null
}

/** What a finished session returns: how its last attempt ended. */
export interface SessionOutput {
  readonly outcome: Outcome | null
}

/** Input of the `capture` actor: the session to read the screen of (null when no session was created). */
export type CaptureInput = AttemptRef & { readonly sessionName: string | null }

/** Input of the `verify` actor: the commit the attempt started from. */
export type VerifyInput = AttemptRef & { readonly baseCommit: string | null }

/** Input of the `clean` actor: the session to end, and whether a launch stopped half way may have left one. */
export type CleanInput = AttemptRef & { readonly sessionName: string | null; readonly launchInterrupted: boolean }

/** Input of the `notify` and `remember` actors: the whole context of the finished attempt. */
export type ReportInput = AttemptRef & { readonly context: SessionContext }
