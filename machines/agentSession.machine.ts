/**
 * The agent session lifecycle: one actor per dispatched bead, one pass from
 * `preflight` to `remembering` per attempt, retried with exponential backoff
 * while the policy allows.
 *
 * Pure: no I/O, no imports from `src/`, `effect` or `node:*`. Every side effect
 * is an actor referenced by name and provided by `src/sessions/sessionActors.ts`;
 * the placeholders below throw so an unprovided name fails loudly. Time enters
 * only through events and actor outputs (each carries `at`, epoch ms), so the
 * deadline and the backoff are absolute times in context and can be re-armed
 * after a restore.
 */
import { assign, fromCallback, fromPromise, setup } from "xstate"
import type {
  AttemptRef,
  CaptureInput,
  CaptureOutput,
  CleanInput,
  Decision,
  FailureReason,
  LaunchOutput,
  PreflightOutput,
  ReportInput,
  SessionContext,
  SessionEvent,
  SessionInput,
  SessionOutput,
  StepOutput,
  VerifyInput,
  VerifyOutput,
  WatchInput
} from "./agentSession.types.js"

const notProvided = (name: string) => () => {
  throw new Error(`agentSession: actor "${name}" is not provided; use machine.provide()`)
}

type Done<T> = { readonly output: T }
const out = <T>(event: unknown): T => (event as Done<T>).output

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

export const agentSessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    output: {} as SessionOutput
  },
  actors: {
    preflight: fromPromise<PreflightOutput, AttemptRef>(notProvided("preflight")),
    launch: fromPromise<LaunchOutput, AttemptRef>(notProvided("launch")),
    watchAgent: fromCallback<SessionEvent, WatchInput>(notProvided("watchAgent")),
    capture: fromPromise<CaptureOutput, CaptureInput>(notProvided("capture")),
    verify: fromPromise<VerifyOutput, VerifyInput>(notProvided("verify")),
    clean: fromPromise<StepOutput, CleanInput>(notProvided("clean")),
    notify: fromPromise<StepOutput, ReportInput>(notProvided("notify")),
    remember: fromPromise<StepOutput, ReportInput>(notProvided("remember"))
  },
  delays: {
    /** Time left before the attempt's absolute deadline. */
    attemptDeadline: ({ context }) => Math.max(0, (context.deadlineAt ?? context.now) - context.now),
    /** No output for this long is a stall. */
    stallTime: ({ context }) => context.policy.stallMs,
    /** Time left before the absolute end of the retry backoff. */
    retryBackoff: ({ context }) => Math.max(0, (context.backoffUntil ?? context.now) - context.now)
  },
  guards: {
    preflightPassed: ({ event }) => out<PreflightOutput>(event).ok,
    launched: ({ event }) => out<LaunchOutput>(event).ok,
    verificationPassed: ({ event }) => out<VerifyOutput>(event).overall === "pass",
    claimsDone: ({ context }) => context.claim?.kind === "done" && context.outcome === null && !context.cancelRequested,
    signalIsStale: ({ context, event }) =>
      event.type === "AGENT.SIGNAL" &&
      event.signal.attemptId !== null &&
      event.signal.attemptId !== context.attemptId,
    signalUnattributedBeforeLaunch: ({ context, event }) =>
      event.type === "AGENT.SIGNAL" &&
      event.signal.attemptId === null &&
      event.signal.at < (context.attemptStartedAt ?? Number.POSITIVE_INFINITY),
    signalDone: ({ event }) => event.type === "AGENT.SIGNAL" && event.signal.status === "done",
    signalFailed: ({ event }) => event.type === "AGENT.SIGNAL" && event.signal.status === "failed",
    exitedCleanly: ({ context, event }) =>
      event.type === "AGENT.EXITED" && !event.lost && event.exitCode === 0 && context.policy.sources.includes("exit"),
    waitingFromSignal: ({ context }) => context.waiting !== null && context.waiting.source !== "dialog",
    outcomeDone: ({ context }) => context.outcome === "done",
    willRetry: ({ context }) => context.willRetry,
    outcomeTimeout: ({ context }) => context.outcome === "timeout",
    outcomeCancelled: ({ context }) => context.outcome === "cancelled" || context.cancelRequested
  },
  actions: {
    startAttempt: assign(({ context, event }) => ({
      ...attemptFields,
      attempt: context.attempt + 1,
      backoffUntil: null,
      now: "at" in event && typeof event.at === "number" ? event.at : context.now
    })),
    recordPreflight: assign(({ context, event }) => {
      const output = out<PreflightOutput>(event)
      return {
        now: output.at,
        preflight: output,
        attemptId: output.attemptId,
        attemptStartedAt: output.at,
        deadlineAt: output.at + context.policy.timeoutMs
      }
    }),
    failPreflight: assign(({ context, event }) => {
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
    }),
    recordLaunch: assign(({ event }) => {
      const output = out<LaunchOutput>(event)
      return { now: output.at, launch: output, lastOutputAt: output.at }
    }),
    failLaunch: assign(({ context, event }) => {
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
    }),
    failDelivery: assign(({ context, event }) => {
      if (event.type !== "AGENT.DELIVERY_FAILED") return {}
      const decision: Decision = { kind: "failed", source: "launch", at: event.at, detail: { reason: event.reason, screen: event.screen } }
      return {
        now: event.at,
        outcome: "failed" as const,
        failureReason: "launch-failed" as const,
        claim: decision,
        finishedAt: event.at,
        evidence: [...context.evidence, decision]
      }
    }),
    failStageError: assign(({ context, event }, params: { stage: "preflight" | "launch" | "watch" }) => {
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
    }),
    failVerificationError: assign(({ context, event }) => {
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
    }),
    noteResume: assign(({ context, event }) => (event.type === "RESUME" ? { now: Math.max(context.now, event.at) } : {})),
    noteReport: assign(({ context, event }) => {
      if (event.type !== "AGENT.REPORT") return {}
      const report = event.report
      return {
        finalMessage: report.finalMessage ?? context.finalMessage,
        usage: report.usage ?? context.usage,
        costUsd: report.costUsd ?? context.costUsd
      }
    }),
    noteOutput: assign(({ context, event }) => {
      const at = "at" in event && typeof event.at === "number" ? event.at : context.now
      return { now: at, lastOutputAt: at }
    }),
    noteStall: assign(({ context }) => {
      const at = (context.lastOutputAt ?? context.now) + context.policy.stallMs
      const decision: Decision = {
        kind: "stalled",
        source: "stall-timer",
        at,
        detail: { reason: `no output for ${context.policy.stallMs} ms` }
      }
      return { now: Math.max(context.now, at), evidence: [...context.evidence, decision] }
    }),
    noteResumed: assign(({ context, event }) => {
      const at = "at" in event && typeof event.at === "number" ? event.at : context.now
      const decision: Decision =
        event.type === "AGENT.INPUT"
          ? { kind: "resumed", source: "operator", at, detail: { reason: "answered with warden send" } }
          : { kind: "resumed", source: context.waiting?.source ?? "stall-timer", at, detail: {} }
      return { now: at, waiting: null, evidence: [...context.evidence, decision] }
    }),
    noteDialog: assign(({ context, event }) => {
      if (event.type !== "AGENT.DIALOG") return {}
      const decision: Decision = {
        kind: "waiting-input",
        source: "dialog",
        at: event.at,
        detail: { line: event.text, screen: event.screen }
      }
      return { now: event.at, waiting: decision, evidence: [...context.evidence, decision] }
    }),
    noteWaitingSignal: assign(({ context, event }) => {
      if (event.type !== "AGENT.SIGNAL") return {}
      const decision: Decision = {
        kind: "waiting-input",
        source: event.signal.source,
        at: event.signal.at,
        detail: { summary: event.signal.summary, payload: event.signal.payload }
      }
      return { now: event.signal.at, waiting: decision, evidence: [...context.evidence, decision] }
    }),
    ignoreSignal: assign(({ context, event }) => {
      if (event.type !== "AGENT.SIGNAL") return {}
      const reason =
        context.attemptId === null || context.outcome !== null
          ? "no attempt is running"
          : event.signal.attemptId === null
            ? "no attempt id, and written before this attempt started"
            : `for attempt ${event.signal.attemptId}, not the current ${context.attemptId}`
      return { ignored: [...context.ignored, { at: event.signal.at, reason, signal: event.signal }] }
    }),
    claimFromSignal: assign(({ context, event }) => {
      if (event.type !== "AGENT.SIGNAL") return {}
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
    }),
    claimFromMarker: assign(({ context, event }) => {
      if (event.type !== "AGENT.MARKER") return {}
      const decision: Decision = { kind: event.status, source: "marker", at: event.at, detail: { line: event.line } }
      return {
        now: event.at,
        claim: decision,
        finishedAt: event.at,
        evidence: [...context.evidence, decision],
        ...(event.status === "failed" ? { outcome: "failed" as const, failureReason: "agent-failed" as const } : {})
      }
    }),
    claimFromIdle: assign(({ context, event }) => {
      if (event.type !== "AGENT.IDLE") return {}
      const decision: Decision = { kind: "done", source: "idle-prompt", at: event.at, detail: { screen: event.screen } }
      return { now: event.at, claim: decision, finishedAt: event.at, evidence: [...context.evidence, decision] }
    }),
    claimFromExit: assign(({ context, event }) => {
      if (event.type !== "AGENT.EXITED") return {}
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
    }),
    markTimeout: assign(({ context }) => {
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
    }),
    markCancelled: assign(({ context, event }) => {
      const at = event.type === "CANCEL" ? event.at : context.now
      const decision: Decision = {
        kind: "cancelled",
        source: "operator",
        at,
        detail: { reason: event.type === "CANCEL" ? (event.reason ?? "cancelled") : "cancelled" }
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
    }),
    requestCancel: assign({ cancelRequested: true }),
    recordCapture: assign(({ context, event }) => {
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
    }),
    recordVerification: assign(({ context, event }) => {
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
    }),
    stamp: assign(({ context, event }) => {
      const at = (event as { output?: { at?: unknown } }).output?.at
      return { now: typeof at === "number" ? at : context.now }
    }),
    decideRetry: assign(({ context }) => {
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
    }),
    scheduleRetry: assign(({ context }) => {
      const policy = context.policy.retry
      const delay = Math.min(
        policy.backoffMaxMs,
        policy.backoffInitialMs * Math.pow(policy.backoffFactor, Math.max(0, context.attempt - 1))
      )
      return { backoffUntil: context.now + delay }
    }),
    archiveAttempt: assign(({ context }) => ({
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
    })),
    finishCancelled: assign(({ context, event }) => ({
      now: event.type === "CANCEL" ? event.at : context.now,
      outcome: "cancelled" as const,
      failureReason: "cancelled" as const,
      cancelRequested: true,
      finishedAt: event.type === "CANCEL" ? event.at : context.now
    }))
  }
}).createMachine({
  id: "agentSession",
  context: ({ input }) => ({
    bead: input.bead,
    policy: input.policy,
    now: 0,
    attempt: 0,
    backoffUntil: null,
    attempts: [],
    cancelRequested: false,
    ...attemptFields
  }),
  output: ({ context }) => ({ outcome: context.outcome }),
  initial: "queued",
  on: {
    "AGENT.SIGNAL": { actions: "ignoreSignal" }
  },
  states: {
    /** Waiting to be admitted: by the supervisor when a slot is free, at once in the foreground CLI. */
    queued: {
      on: {
        ADMIT: { target: "preflight" },
        CANCEL: { target: "cancelled", actions: "finishCancelled" }
      }
    },
    /** Checks that the attempt can run (bead id, repo, command, user, headroom, no live session, template). */
    preflight: {
      entry: "startAttempt",
      invoke: {
        src: "preflight",
        input: ({ context }) => ({ bead: context.bead, attempt: context.attempt, attemptId: null }),
        onDone: [
          { guard: "preflightPassed", target: "launching", actions: "recordPreflight" },
          { target: "recording", actions: ["recordPreflight", "failPreflight"] }
        ],
        onError: { target: "recording", actions: { type: "failStageError", params: { stage: "preflight" } } }
      },
      on: { CANCEL: { target: "recording", actions: "markCancelled" } }
    },
    /** Creates the tmux session, starts the transcript and delivers the prompt once the agent can read it. */
    launching: {
      invoke: {
        src: "launch",
        input: ({ context }) => ({ bead: context.bead, attempt: context.attempt, attemptId: context.attemptId }),
        onDone: [
          { guard: "launched", target: "running", actions: "recordLaunch" },
          { target: "recording", actions: "failLaunch" }
        ],
        onError: { target: "recording", actions: { type: "failStageError", params: { stage: "launch" } } }
      },
      after: { attemptDeadline: { target: "recording", actions: "markTimeout" } },
      on: { CANCEL: { target: "recording", actions: "markCancelled" } }
    },
    /** The agent works; completion is whichever enabled source fires first, or the deadline. */
    running: {
      invoke: {
        src: "watchAgent",
        input: ({ context }) => ({
          bead: context.bead,
          attemptId: context.attemptId ?? "",
          attempt: context.attempt,
          sessionName: context.launch?.sessionName ?? "",
          transcriptPath: context.launch?.transcriptPath ?? null,
          sources: context.policy.sources,
          since: context.launch?.at ?? context.now,
          signalsOffset: context.launch?.signalsOffset ?? 0,
          promptPending: context.launch?.promptPending ?? false
        }),
        // A watch that cannot run (no inotify left, say) must not leave the agent unsupervised.
        onError: { target: "recording", actions: { type: "failStageError", params: { stage: "watch" } } }
      },
      on: {
        CANCEL: { target: "recording", actions: "markCancelled" },
        "AGENT.SIGNAL": [
          { guard: "signalIsStale", actions: "ignoreSignal" },
          { guard: "signalUnattributedBeforeLaunch", actions: "ignoreSignal" },
          { guard: "signalDone", target: "recording", actions: "claimFromSignal" },
          { guard: "signalFailed", target: "recording", actions: "claimFromSignal" },
          { target: ".waitingInput", actions: "noteWaitingSignal" }
        ],
        "AGENT.MARKER": { target: "recording", actions: "claimFromMarker" },
        "AGENT.IDLE": { target: "recording", actions: "claimFromIdle" },
        "AGENT.EXITED": { target: "recording", actions: "claimFromExit" },
        "AGENT.REPORT": { actions: "noteReport" },
        "AGENT.DELIVERY_FAILED": { target: "recording", actions: "failDelivery" }
      },
      initial: "working",
      states: {
        /** Output is flowing; no output for the profile's stall time is a stall. */
        // The deadline is armed in each sub-state (from the absolute `deadlineAt`), so re-entering
        // one after a restore (RESUME) re-arms it without losing where the session was.
        working: {
          after: {
            attemptDeadline: { target: "#agentSession.recording", actions: "markTimeout" },
            stallTime: { target: "stalled", actions: "noteStall" }
          },
          on: {
            "AGENT.OUTPUT": { target: "working", reenter: true, actions: "noteOutput" },
            "AGENT.DIALOG": { target: "waitingInput", actions: "noteDialog" },
            RESUME: { target: "working", reenter: true, actions: "noteResume" }
          }
        },
        /** No output for the stall time; the deadline still runs, and output brings it back. */
        stalled: {
          after: { attemptDeadline: { target: "#agentSession.recording", actions: "markTimeout" } },
          on: {
            "AGENT.OUTPUT": { target: "working", actions: ["noteOutput", "noteResumed"] },
            "AGENT.DIALOG": { target: "waitingInput", actions: "noteDialog" },
            RESUME: { target: "stalled", reenter: true, actions: "noteResume" }
          }
        },
        /** A dialog or question waits for an answer (`warden send`); not done, not a stall; the deadline runs. */
        waitingInput: {
          after: { attemptDeadline: { target: "#agentSession.recording", actions: "markTimeout" } },
          on: {
            RESUME: { target: "waitingInput", reenter: true, actions: "noteResume" },
            "AGENT.DIALOG_CLEARED": { target: "working", actions: ["noteOutput", "noteResumed"] },
            // A wait the agent announced (a question, a permission prompt) ends when the operator answers (`warden send`).
            "AGENT.INPUT": { guard: "waitingFromSignal", target: "working", actions: ["noteOutput", "noteResumed"] }
          }
        }
      }
    },
    /** Captures the screen (before anything is killed) as the output summary; records are written. */
    recording: {
      invoke: {
        src: "capture",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          sessionName: context.launch?.ok ? context.launch.sessionName : null
        }),
        onDone: [
          { guard: "claimsDone", target: "verifying", actions: "recordCapture" },
          { target: "cleaning", actions: "recordCapture" }
        ],
        onError: [{ guard: "claimsDone", target: "verifying" }, { target: "cleaning" }]
      },
      on: { CANCEL: { actions: "requestCancel" } }
    },
    /** Runs the configured checks; the attempt is `done` only when they pass. */
    verifying: {
      invoke: {
        src: "verify",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          baseCommit: context.launch?.baseCommit ?? null
        }),
        onDone: { target: "cleaning", actions: "recordVerification" },
        onError: { target: "cleaning", actions: "failVerificationError" }
      },
      on: { CANCEL: { target: "cleaning", actions: "markCancelled" } }
    },
    /** Ends the terminal session (its whole process tree) and releases the slot. */
    cleaning: {
      invoke: {
        src: "clean",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          // A launch that failed ended its own session (and a name it could not create is not ours to kill).
          sessionName: context.launch?.ok ? context.launch.sessionName : null,
          // A launch stopped half way (cancel, deadline) may have created the session already.
          launchInterrupted: context.launch === null && context.preflight?.ok === true
        }),
        onDone: { target: "notifying", actions: ["stamp", "decideRetry"] },
        onError: { target: "notifying", actions: "decideRetry" }
      },
      on: { CANCEL: { actions: "requestCancel" } }
    },
    /** Tells the coordinator how the attempt ended. */
    notifying: {
      invoke: {
        src: "notify",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          context
        }),
        onDone: { target: "remembering", actions: "stamp" },
        onError: { target: "remembering" }
      },
      on: { CANCEL: { actions: ["requestCancel", "decideRetry"] } }
    },
    /** Appends the attempt's line to `memory/YYYY-MM-DD.md`, then ends the bead or schedules the retry. */
    remembering: {
      invoke: {
        src: "remember",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          context
        }),
        onDone: { target: "settling", actions: "stamp" },
        onError: { target: "settling" }
      },
      on: { CANCEL: { actions: ["requestCancel", "decideRetry"] } }
    },
    /** Routes the finished attempt to its final state or to the backoff (transient, no time spent). */
    settling: {
      always: [
        { guard: "outcomeDone", target: "done" },
        { guard: "willRetry", target: "backoff", actions: ["archiveAttempt", "scheduleRetry"] },
        { guard: "outcomeCancelled", target: "cancelled", actions: "finishCancelled" },
        { guard: "outcomeTimeout", target: "timeout" },
        { target: "failed" }
      ]
    },
    /** Waits out the exponential backoff, then queues the next attempt. */
    backoff: {
      after: { retryBackoff: { target: "queued" } },
      on: {
        CANCEL: { target: "cancelled", actions: "finishCancelled" },
        RESUME: { target: "backoff", reenter: true, actions: "noteResume" }
      }
    },
    /** The work was done and verified. */
    done: { type: "final" },
    /** The last attempt failed (agent, launch, preflight or verification) and no retry is left. */
    failed: { type: "final" },
    /** The last attempt ran past its deadline and no retry is left. */
    timeout: { type: "final" },
    /** An operator cancelled the bead. */
    cancelled: { type: "final" }
  }
})

export type AgentSessionMachine = typeof agentSessionMachine
