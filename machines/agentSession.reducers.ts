/**
 * The agent session's reducers: what each `assign` action of
 * `agentSession.machine.ts` does to the context, as pure functions of
 * (context, event[, params]) to a partial context. The machine names them in
 * `setup({ actions })`; a reducer given an event it was not written for throws
 * (`assertEvent`), so a mis-wired transition fails loudly instead of doing nothing.
 *
 * Every decision (a claim of completion, a stall, a wait for input, a resume,
 * a verdict) is recorded by one reducer, `decide`, told by the machine what
 * was decided and from where (`DecideParams`); what it does to the attempt
 * follows from its kind (`consequences`), what it saw from its source (`witness`).
 */
import { assertEvent, type EventObject } from "xstate"
import type {
  CaptureOutput,
  Decision,
  DecisionSource,
  FailureReason,
  LaunchOutput,
  NotifyOutput,
  PreflightOutput,
  SessionContext,
  SessionEvent,
  SessionInput,
  StepOutput,
  VerifyOutput
} from "./agentSession.types.js"

/** What a reducer reads: the context, and the event (a machine event, or an invoked actor's done or error event). */
export interface ReducerArgs {
  readonly context: SessionContext
  readonly event: SessionEvent
}

/** What a reducer returns: the fields of the context it changes. */
export type Update = Partial<SessionContext>

/** The output of an invoked actor, read from its done event (any other event is a mis-wired transition: it throws). */
export const out = <T>(event: EventObject): T => {
  assertEvent(event, "xstate.done.actor.*")
  return (event as unknown as { readonly output: T }).output
}

/** The error of an invoked actor, read from its error event (any other event throws). */
const errorOf = (event: EventObject): unknown => {
  assertEvent(event, "xstate.error.actor.*")
  return (event as unknown as { readonly error: unknown }).error
}

/** The fields of the context that each attempt starts afresh. */
const attemptFields = {
  attemptId: null,
  attemptStartedAt: null,
  deadlineAt: null,
  finishedAt: null,
  lastOutputAt: null,
  preflight: null,
  launch: null,
  claim: null,
  capture: null,
  verification: null,
  outcome: null,
  failureReason: null,
  exitCode: null,
  finalMessage: null,
  usage: null,
  costUsd: null,
  waiting: null,
  evidence: [],
  ignored: [],
  willRetry: false,
  notifyDelivery: null
} as const

/** The failure reason a failed decision stands for. */
const failureFor = (decision: Decision): FailureReason => {
  switch (decision.source) {
    case "preflight":
      return "preflight-failed"
    case "launch":
      return "launch-failed"
    case "verification":
      return "verification-failed"
    case "exit":
      return "agent-exited"
    case "session-lost":
      return "session-lost"
    case "deadline":
      return "timeout"
    case "operator":
      return "cancelled"
    default:
      return "agent-failed"
  }
}

/** The events that show the agent is working again: output, a dialog answered, the operator's input. */
const outputEvents = ["AGENT.OUTPUT", "AGENT.DIALOG_CLEARED", "AGENT.INPUT"] as const

/** The context of a new session, before its first attempt. */
export const initialContext = (input: SessionInput): SessionContext => ({
  bead: input.bead,
  policy: input.policy,
  now: 0,
  attempt: 0,
  backoffUntil: null,
  attempts: [],
  cancelRequested: false,
  ...attemptFields
})

export const startAttempt = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "ADMIT")
  return { ...attemptFields, attempt: context.attempt + 1, backoffUntil: null, now: event.at }
}

export const recordPreflight = ({ context, event }: ReducerArgs): Update => {
  const output = out<PreflightOutput>(event)
  return {
    now: output.at,
    preflight: output,
    attemptId: output.attemptId,
    attemptStartedAt: output.at,
    deadlineAt: output.at + context.policy.timeoutMs
  }
}

export const recordLaunch = ({ event }: ReducerArgs): Update => {
  const output = out<LaunchOutput>(event)
  return { now: output.at, launch: output, lastOutputAt: output.at }
}

/**
 * What the machine tells `decide`: the kind of decision and where it came
 * from. Two sources are read from the event or the context: `agent` is the
 * channel the agent's signal came through (`signal`, `hook`, `notify`,
 * `status-file`), `waiting` is what the session was waiting on (a dialog, the
 * agent's question). `step` names the invoked step whose error this is, in
 * the reason ("watch failed: ...").
 */
export interface DecideParams {
  readonly kind: Decision["kind"]
  readonly source: Exclude<DecisionSource, "signal" | "hook" | "notify" | "status-file"> | "agent" | "waiting"
  readonly step?: "preflight" | "launch" | "watch"
}

/** What a decision saw: when, its detail, and fields of the context it sets beside the decision itself. */
interface Witnessed {
  readonly at: number
  readonly detail: Decision["detail"]
  readonly source?: DecisionSource
  readonly update?: Update
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** What a decision saw, read by its source from the event that made it (or, for a timer, from the context). */
const witness = ({ context, event }: ReducerArgs, params: DecideParams): Witnessed => {
  switch (params.source) {
    case "preflight":
    case "launch":
    case "verification": {
      if (event.type.startsWith("xstate.error.actor.")) {
        const reason = reasonOf(errorOf(event))
        return { at: context.now, detail: { reason: params.step === undefined ? reason : `${params.step} failed: ${reason}` } }
      }
      if (params.source === "launch" && event.type === "AGENT.DELIVERY_FAILED") {
        return { at: event.at, detail: { reason: event.reason, screen: event.screen } }
      }
      if (params.source === "preflight") {
        const output = out<PreflightOutput>(event)
        const failed = output.checks.filter((check) => !check.ok && check.advisory !== true)
        return { at: output.at, detail: { reason: failed.map((check) => `${check.name}: ${check.detail}`).join("; ") } }
      }
      if (params.source === "launch") {
        const output = out<LaunchOutput>(event)
        return { at: output.at, detail: { reason: output.error ?? "launch failed", screen: output.screen } }
      }
      const output = out<VerifyOutput>(event)
      return { at: output.at, detail: { reason: output.checks.map((check) => `${check.name}=${check.status}`).join(", ") } }
    }
    case "deadline": {
      const at = context.deadlineAt ?? context.now
      return { at, detail: { reason: `deadline of ${context.policy.timeoutMs} ms passed` }, update: { now: Math.max(at, context.now) } }
    }
    case "stall-timer": {
      if (params.kind === "resumed") {
        assertEvent(event, "AGENT.OUTPUT")
        return { at: event.at, detail: {} }
      }
      const at = (context.lastOutputAt ?? context.now) + context.policy.stallMs
      return { at, detail: { reason: `no output for ${context.policy.stallMs} ms` }, update: { now: Math.max(context.now, at) } }
    }
    case "waiting":
      assertEvent(event, outputEvents)
      return { at: event.at, detail: {}, source: context.waiting?.source ?? "stall-timer" }
    case "operator":
      assertEvent(event, ["CANCEL", "AGENT.INPUT"])
      return event.type === "CANCEL"
        ? { at: event.at, detail: { reason: event.reason ?? "cancelled" } }
        : { at: event.at, detail: { reason: "answered with warden send" } }
    case "dialog":
      assertEvent(event, "AGENT.DIALOG")
      return { at: event.at, detail: { line: event.text, screen: event.screen } }
    case "agent":
      assertEvent(event, "AGENT.SIGNAL")
      return {
        at: event.signal.at,
        detail: { summary: event.signal.summary, payload: event.signal.payload },
        source: event.signal.source,
        // The agent's own summary of a finished turn is its final message.
        update: params.kind === "waiting-input" ? {} : { finalMessage: event.signal.summary ?? context.finalMessage }
      }
    case "marker":
      assertEvent(event, "AGENT.MARKER")
      return { at: event.at, detail: { line: event.line } }
    case "idle-prompt":
      assertEvent(event, "AGENT.IDLE")
      return { at: event.at, detail: { screen: event.screen } }
    case "exit":
    case "session-lost":
      assertEvent(event, "AGENT.EXITED")
      return {
        at: event.at,
        detail: {
          exitCode: event.exitCode,
          ...(event.exitedAt != null ? { exitedAt: event.exitedAt } : {}),
          reason: event.lost ? "the terminal session disappeared" : event.exitCode === 0 ? "exited 0" : `exited ${event.exitCode}`
        },
        // The run ended when the agent exited, not when that was noticed.
        update: { exitCode: event.exitCode, finishedAt: event.exitedAt != null && event.exitedAt <= event.at ? event.exitedAt : event.at }
      }
  }
}

/**
 * What a decision does to the attempt, by its kind: a stall is only evidence;
 * a wait for input is the session's `waiting`, a resume clears it; verification's
 * `done` or `failed` is the attempt's outcome; any other `done`, `failed`,
 * `timeout` or `cancelled` is the attempt's claim and its end (a `done` claim
 * still waits for verification, the others are the outcome; a cancel after the
 * run ended keeps when it ended).
 */
const consequences = (context: SessionContext, decision: Decision): Update => {
  const evidence = [...context.evidence, decision]
  const claim = { claim: decision, finishedAt: decision.at, evidence }
  switch (decision.kind) {
    case "stalled":
      return { evidence }
    case "waiting-input":
      return { waiting: decision, evidence }
    case "resumed":
      return { waiting: null, evidence }
    case "done":
      return decision.source === "verification" ? { outcome: "done", failureReason: null, evidence } : claim
    case "failed":
      return decision.source === "verification"
        ? { outcome: "failed", failureReason: failureFor(decision), evidence }
        : { ...claim, outcome: "failed", failureReason: failureFor(decision) }
    case "timeout":
      return { ...claim, outcome: "timeout", failureReason: failureFor(decision) }
    case "cancelled":
      return {
        ...claim,
        finishedAt: context.finishedAt ?? decision.at,
        outcome: "cancelled",
        failureReason: failureFor(decision),
        cancelRequested: true
      }
  }
}

/** Records a decision: the one action the machine takes for every decision it makes (see `DecideParams`). */
export const decide = (args: ReducerArgs, params: DecideParams): Update => {
  const seen = witness(args, params)
  const decision: Decision = {
    kind: params.kind,
    source: seen.source ?? (params.source as DecisionSource),
    at: seen.at,
    detail: seen.detail
  }
  return { now: seen.at, ...consequences(args.context, decision), ...seen.update }
}

export const noteResume = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "RESUME")
  return { now: Math.max(context.now, event.at) }
}

export const noteReport = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.REPORT")
  const report = event.report
  return {
    finalMessage: report.finalMessage ?? context.finalMessage,
    usage: report.usage ?? context.usage,
    costUsd: report.costUsd ?? context.costUsd
  }
}

export const noteOutput = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, outputEvents)
  const at = event.at
  return { now: at, lastOutputAt: at }
}

export const ignoreSignal = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.SIGNAL")
  const reason =
    context.attemptId === null || context.outcome !== null
      ? "no attempt is running"
      : event.signal.attemptId === null
        ? "no attempt id, and written before this attempt started"
        : `for attempt ${event.signal.attemptId}, not the current ${context.attemptId}`
  return { ignored: [...context.ignored, { at: event.signal.at, reason, signal: event.signal }] }
}

export const requestCancel = (): Update => ({ cancelRequested: true })

export const recordCapture = ({ context, event }: ReducerArgs): Update => {
  const output = out<CaptureOutput>(event)
  const reported = {
    finalMessage: output.report?.finalMessage ?? context.finalMessage,
    usage: output.report?.usage ?? context.usage,
    costUsd: output.report?.costUsd ?? context.costUsd
  }
  const claim = context.claim
  if (claim === null || claim.detail.screen !== undefined || output.screen.length === 0) {
    return { now: output.at, capture: output, ...reported }
  }
  // The decision keeps the screen it was made on (the capture runs before anything is killed).
  const seen: Decision = { ...claim, detail: { ...claim.detail, screen: output.screen.slice(-10) } }
  return {
    now: output.at,
    capture: output,
    ...reported,
    claim: seen,
    evidence: context.evidence.map((decision) => (decision === claim ? seen : decision))
  }
}

export const recordVerification = ({ event }: ReducerArgs): Update => {
  const output = out<VerifyOutput>(event)
  return { now: output.at, verification: output }
}

export const stamp = ({ event }: ReducerArgs): Update => ({ now: out<StepOutput>(event).at })

/** The notifying step's delivery (or none), kept for the run record. */
export const recordNotify = ({ event }: ReducerArgs): Update => {
  const output = out<Partial<NotifyOutput> & StepOutput>(event)
  return { now: output.at, notifyDelivery: output.delivery ?? null }
}

export const decideRetry = ({ context }: ReducerArgs): Update => {
  const policy = context.policy.retry
  const retryable = context.failureReason !== null && policy.retryOn.includes(context.failureReason)
  return {
    willRetry:
      context.outcome !== "done" &&
      context.outcome !== "cancelled" &&
      !context.cancelRequested &&
      retryable &&
      context.attempt < policy.maxAttempts
  }
}

export const scheduleRetry = ({ context }: ReducerArgs): Update => {
  const policy = context.policy.retry
  const delay = Math.min(
    policy.backoffMaxMs,
    policy.backoffInitialMs * Math.pow(policy.backoffFactor, Math.max(0, context.attempt - 1))
  )
  return { backoffUntil: context.now + delay }
}

export const archiveAttempt = ({ context }: ReducerArgs): Update => ({
  attempts: [
    ...context.attempts,
    {
      attempt: context.attempt,
      attemptId: context.attemptId,
      outcome: context.outcome ?? "failed",
      failureReason: context.failureReason,
      startedAt: context.attemptStartedAt,
      finishedAt: context.finishedAt,
      decision: context.claim,
      outputSummary: context.capture?.outputSummary ?? null,
      exitCode: context.exitCode
    }
  ]
})

/** Ends a bead cancelled outside an attempt: on CANCEL (queued, backoff), or when settling an attempt that was cancelled (after any event). */
export const finishCancelled = ({ context, event }: ReducerArgs): Update => ({
  now: event.type === "CANCEL" ? event.at : context.now,
  outcome: "cancelled" as const,
  failureReason: "cancelled" as const,
  cancelRequested: true,
  finishedAt: event.type === "CANCEL" ? event.at : context.now
})
