/**
 * The agent session's guards: pure predicates of (context, event) that
 * `agentSession.machine.ts` names in `setup({ guards })`. A guard that reads
 * an event asserts its type (`assertEvent`), so a guard wired to the wrong
 * transition throws instead of quietly answering false.
 */
import { assertEvent } from "xstate"
import type { LaunchOutput, PreflightOutput, SessionContext, SessionEvent, VerifyOutput } from "./agentSession.types.js"
import { out } from "./agentSession.reducers.js"

/** What a guard reads: the context and the event. */
export interface GuardArgs {
  readonly context: SessionContext
  readonly event: SessionEvent
}

export const preflightPassed = ({ event }: GuardArgs) => out<PreflightOutput>(event).ok

export const launched = ({ event }: GuardArgs) => out<LaunchOutput>(event).ok

export const verificationPassed = ({ event }: GuardArgs) => out<VerifyOutput>(event).overall === "pass"

export const claimsDone = ({ context }: GuardArgs) => context.claim?.kind === "done" && context.outcome === null && !context.cancelRequested

/** A signal for another attempt than the running one. */
export const signalIsStale = ({ context, event }: GuardArgs) => {
  assertEvent(event, "AGENT.SIGNAL")
  return event.signal.attemptId !== null && event.signal.attemptId !== context.attemptId
}

/** A signal without an attempt id, written before this attempt started. */
export const signalUnattributedBeforeLaunch = ({ context, event }: GuardArgs) => {
  assertEvent(event, "AGENT.SIGNAL")
  return event.signal.attemptId === null && event.signal.at < (context.attemptStartedAt ?? Number.POSITIVE_INFINITY)
}

export const signalDone = ({ event }: GuardArgs) => {
  assertEvent(event, "AGENT.SIGNAL")
  return event.signal.status === "done"
}

export const signalFailed = ({ event }: GuardArgs) => {
  assertEvent(event, "AGENT.SIGNAL")
  return event.signal.status === "failed"
}

export const markerDone = ({ event }: GuardArgs) => {
  assertEvent(event, "AGENT.MARKER")
  return event.status === "done"
}

/** The agent exited 0 on its own, and the profile counts an exit as completion. */
export const exitedCleanly = ({ context, event }: GuardArgs) => {
  assertEvent(event, "AGENT.EXITED")
  return !event.lost && event.exitCode === 0 && context.policy.sources.includes("exit")
}

/** The terminal session disappeared (no exit status was seen). */
export const sessionLost = ({ event }: GuardArgs) => {
  assertEvent(event, "AGENT.EXITED")
  return event.lost
}

/** The session waits on an answer the agent asked for (its signal), not on a dialog the screen shows. */
export const waitingFromSignal = ({ context }: GuardArgs) => context.waiting !== null && context.waiting.source !== "dialog"

export const outcomeDone = ({ context }: GuardArgs) => context.outcome === "done"

export const willRetry = ({ context }: GuardArgs) => context.willRetry

export const outcomeTimeout = ({ context }: GuardArgs) => context.outcome === "timeout"

export const outcomeCancelled = ({ context }: GuardArgs) => context.outcome === "cancelled" || context.cancelRequested
