/**
 * The agent session's reducers: what each `assign` action of
 * `agentSession.machine.ts` does to the context, as pure functions of
 * (context, event[, params]) to a partial context. The machine names them in
 * `setup({ actions })`; a reducer given an event it was not written for throws
 * (`assertEvent`), so a mis-wired transition fails loudly instead of doing nothing.
 */
import { assertEvent } from "xstate"
import type {
  CaptureOutput,
  Decision,
  FailureReason,
  LaunchOutput,
  PreflightOutput,
  SessionContext,
  SessionEvent,
  SessionInput,
  VerifyOutput
} from "./agentSession.types.js"

/** What a reducer reads: the context, and the event (a machine event, or an invoked actor's done or error event). */
export interface ReducerArgs {
  readonly context: SessionContext
  readonly event: SessionEvent
}

/** What a reducer returns: the fields of the context it changes. */
export type Update = Partial<SessionContext>

/** The output of an invoked actor, read from its done event. */
export const out = <T>(event: unknown): T => (event as { readonly output: T }).output

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
  willRetry: false
} as const

/** The failure reason a failed decision stands for. */
const failureFor = (decision: Decision): FailureReason => {
  switch (decision.source) {
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

export const failPreflight = ({ context, event }: ReducerArgs): Update => {
  const output = out<PreflightOutput>(event)
  const failed = output.checks.filter((check) => !check.ok && check.advisory !== true)
  const decision: Decision = {
    kind: "failed",
    source: "preflight",
    at: output.at,
    detail: { reason: failed.map((check) => `${check.name}: ${check.detail}`).join("; ") }
  }
  return {
    outcome: "failed" as const,
    failureReason: "preflight-failed" as const,
    claim: decision,
    finishedAt: output.at,
    evidence: [...context.evidence, decision]
  }
}

export const recordLaunch = ({ event }: ReducerArgs): Update => {
  const output = out<LaunchOutput>(event)
  return { now: output.at, launch: output, lastOutputAt: output.at }
}

export const failLaunch = ({ context, event }: ReducerArgs): Update => {
  const output = out<LaunchOutput>(event)
  const decision: Decision = {
    kind: "failed",
    source: "launch",
    at: output.at,
    detail: { reason: output.error ?? "launch failed", screen: output.screen }
  }
  return {
    now: output.at,
    launch: output,
    outcome: "failed" as const,
    failureReason: "launch-failed" as const,
    claim: decision,
    finishedAt: output.at,
    evidence: [...context.evidence, decision]
  }
}

export const failDelivery = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.DELIVERY_FAILED")
  const decision: Decision = { kind: "failed", source: "launch", at: event.at, detail: { reason: event.reason, screen: event.screen } }
  return {
    now: event.at,
    outcome: "failed" as const,
    failureReason: "launch-failed" as const,
    claim: decision,
    finishedAt: event.at,
    evidence: [...context.evidence, decision]
  }
}

export const failStageError = ({ context, event }: ReducerArgs, params: { stage: "preflight" | "launch" | "watch" }) => {
  const error = (event as { error?: unknown }).error
  const decision: Decision = {
    kind: "failed",
    source: params.stage === "preflight" ? "preflight" : "launch",
    at: context.now,
    detail: { reason: `${params.stage} failed: ${error instanceof Error ? error.message : String(error)}` }
  }
  return {
    outcome: "failed" as const,
    failureReason: params.stage === "preflight" ? ("preflight-failed" as const) : ("launch-failed" as const),
    claim: decision,
    finishedAt: context.now,
    evidence: [...context.evidence, decision]
  }
}

export const failVerificationError = ({ context, event }: ReducerArgs): Update => {
  const error = (event as { error?: unknown }).error
  const decision: Decision = {
    kind: "failed",
    source: "verification",
    at: context.now,
    detail: { reason: error instanceof Error ? error.message : String(error) }
  }
  return {
    outcome: "failed" as const,
    failureReason: "verification-failed" as const,
    evidence: [...context.evidence, decision]
  }
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

export const noteStall = ({ context }: ReducerArgs): Update => {
  const at = (context.lastOutputAt ?? context.now) + context.policy.stallMs
  const decision: Decision = {
    kind: "stalled",
    source: "stall-timer",
    at,
    detail: { reason: `no output for ${context.policy.stallMs} ms` }
  }
  return { now: Math.max(context.now, at), evidence: [...context.evidence, decision] }
}

export const noteResumed = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, outputEvents)
  const at = event.at
  const decision: Decision =
    event.type === "AGENT.INPUT"
      ? { kind: "resumed", source: "operator", at, detail: { reason: "answered with warden send" } }
      : { kind: "resumed", source: context.waiting?.source ?? "stall-timer", at, detail: {} }
  return { now: at, waiting: null, evidence: [...context.evidence, decision] }
}

export const noteDialog = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.DIALOG")
  const decision: Decision = {
    kind: "waiting-input",
    source: "dialog",
    at: event.at,
    detail: { line: event.text, screen: event.screen }
  }
  return { now: event.at, waiting: decision, evidence: [...context.evidence, decision] }
}

export const noteWaitingSignal = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.SIGNAL")
  const decision: Decision = {
    kind: "waiting-input",
    source: event.signal.source,
    at: event.signal.at,
    detail: { summary: event.signal.summary, payload: event.signal.payload }
  }
  return { now: event.signal.at, waiting: decision, evidence: [...context.evidence, decision] }
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

export const claimFromSignal = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.SIGNAL")
  const kind = event.signal.status === "done" ? ("done" as const) : ("failed" as const)
  const decision: Decision = {
    kind,
    source: event.signal.source,
    at: event.signal.at,
    detail: { summary: event.signal.summary, payload: event.signal.payload }
  }
  return {
    now: event.signal.at,
    claim: decision,
    finishedAt: event.signal.at,
    finalMessage: event.signal.summary ?? context.finalMessage,
    evidence: [...context.evidence, decision],
    ...(kind === "failed" ? { outcome: "failed" as const, failureReason: "agent-failed" as const } : {})
  }
}

export const claimFromMarker = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.MARKER")
  const decision: Decision = { kind: event.status, source: "marker", at: event.at, detail: { line: event.line } }
  return {
    now: event.at,
    claim: decision,
    finishedAt: event.at,
    evidence: [...context.evidence, decision],
    ...(event.status === "failed" ? { outcome: "failed" as const, failureReason: "agent-failed" as const } : {})
  }
}

export const claimFromIdle = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.IDLE")
  const decision: Decision = { kind: "done", source: "idle-prompt", at: event.at, detail: { screen: event.screen } }
  return { now: event.at, claim: decision, finishedAt: event.at, evidence: [...context.evidence, decision] }
}

export const claimFromExit = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "AGENT.EXITED")
  const done = !event.lost && event.exitCode === 0 && context.policy.sources.includes("exit")
  const decision: Decision = {
    kind: done ? "done" : "failed",
    source: event.lost ? "session-lost" : "exit",
    at: event.at,
    detail: {
      exitCode: event.exitCode,
      ...(event.exitedAt != null ? { exitedAt: event.exitedAt } : {}),
      reason: event.lost
        ? "the terminal session disappeared"
        : event.exitCode === 0
          ? "exited 0"
          : `exited ${event.exitCode}`
    }
  }
  return {
    now: event.at,
    claim: decision,
    exitCode: event.exitCode,
    // The run ended when the agent exited, not when that was noticed.
    finishedAt: event.exitedAt != null && event.exitedAt <= event.at ? event.exitedAt : event.at,
    evidence: [...context.evidence, decision],
    ...(done ? {} : { outcome: "failed" as const, failureReason: failureFor(decision) })
  }
}

export const markTimeout = ({ context }: ReducerArgs): Update => {
  const at = context.deadlineAt ?? context.now
  const decision: Decision = {
    kind: "timeout",
    source: "deadline",
    at,
    detail: { reason: `deadline of ${context.policy.timeoutMs} ms passed` }
  }
  return {
    now: Math.max(at, context.now),
    claim: decision,
    outcome: "timeout" as const,
    failureReason: "timeout" as const,
    finishedAt: at,
    evidence: [...context.evidence, decision]
  }
}

export const markCancelled = ({ context, event }: ReducerArgs): Update => {
  assertEvent(event, "CANCEL")
  const at = event.at
  const decision: Decision = {
    kind: "cancelled",
    source: "operator",
    at,
    detail: { reason: event.reason ?? "cancelled" }
  }
  return {
    now: at,
    claim: decision,
    outcome: "cancelled" as const,
    failureReason: "cancelled" as const,
    cancelRequested: true,
    finishedAt: context.finishedAt ?? at,
    evidence: [...context.evidence, decision]
  }
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

export const recordVerification = ({ context, event }: ReducerArgs): Update => {
  const output = out<VerifyOutput>(event)
  const passed = output.overall === "pass"
  const decision: Decision = {
    kind: passed ? "done" : "failed",
    source: "verification",
    at: output.at,
    detail: {
      reason: output.checks.map((check) => `${check.name}=${check.status}`).join(", ")
    }
  }
  return {
    now: output.at,
    verification: output,
    outcome: passed ? ("done" as const) : ("failed" as const),
    failureReason: passed ? null : ("verification-failed" as const),
    evidence: [...context.evidence, decision]
  }
}

export const stamp = ({ context, event }: ReducerArgs): Update => {
  const at = (event as { output?: { at?: unknown } }).output?.at
  return { now: typeof at === "number" ? at : context.now }
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

export const finishCancelled = ({ context, event }: ReducerArgs): Update => ({
  now: event.type === "CANCEL" ? event.at : context.now,
  outcome: "cancelled" as const,
  failureReason: "cancelled" as const,
  cancelRequested: true,
  finishedAt: event.type === "CANCEL" ? event.at : context.now
})
