/**
 * The service machine's reducers and guards: pure functions of (context,
 * event) that `service.machine.ts` names in `setup({ actions, guards })`.
 * A reducer returns the fields of the context it changes. One that reads an
 * event asserts its type, so a mis-wired transition throws instead of quietly
 * doing nothing.
 *
 * Time: every machine event and actor output carries `at` (epoch ms); the
 * reducers keep the latest in `context.now`, and keep deadlines (the end of a
 * backoff, the start of a healthy run) as absolute times, so delays can be
 * re-armed after a restore (RESUME).
 */
import { assertEvent, type EventObject } from "xstate"
import type { LaunchOutput, ServiceContext, ServiceEvent, ServiceInput, TerminateOutput } from "./service.machine.js"

/** What a reducer or guard reads: the context, and the event (a machine event, or an invoked actor's done or error event). */
export interface Args {
  readonly context: ServiceContext
  readonly event: ServiceEvent | EventObject
}

/** What a reducer returns: the fields of the context it changes. */
export type Update = Partial<ServiceContext>

/** Consecutive failing probes after which a running service is restarted, when the policy does not say. */
export const DEFAULT_UNHEALTHY_AFTER = 3

/** The output of an invoked actor, read from its done event (any other event is a mis-wired transition: it throws). */
const out = <T>(event: EventObject): T => {
  assertEvent(event, "xstate.done.actor.*")
  return (event as unknown as { readonly output: T }).output
}

/** When the event happened: its own `at`, or its actor output's `at`; `null` for an event without a time (a delay firing). */
const timeOf = (event: EventObject): number | null => {
  const e = event as { readonly at?: unknown; readonly output?: { readonly at?: unknown } }
  if (typeof e.at === "number") return e.at
  if (typeof e.output?.at === "number") return e.output.at
  return null
}

/** The event's time, or the last known time when it carries none. */
const nowOf = ({ context, event }: Args): number => timeOf(event) ?? context.now

/** The restarts still inside the intensity window at `now`. */
const inWindow = (context: ServiceContext, now: number): ReadonlyArray<number> =>
  context.recentRestarts.filter((at) => at > now - context.policy.withinSeconds * 1000)

/** The backoff before restart number `n` (1-based) since the last healthy run: `min(max, initial * factor^(n-1))`. */
export const backoffMs = (policy: ServiceInput["policy"], n: number): number =>
  Math.min(policy.backoffMaxMs, policy.backoffInitialMs * Math.pow(policy.backoffFactor, Math.max(0, n - 1)))

export const initialContext = (input: ServiceInput): ServiceContext => ({
  name: input.name,
  policy: input.policy,
  now: input.at ?? 0,
  pid: null,
  attempt: 0,
  restarts: 0,
  recentRestarts: [],
  backoffCount: 0,
  backoffUntil: null,
  healthySince: null,
  unhealthyCount: 0,
  lastExit: null,
  lastError: null,
  health: null,
  since: input.at ?? null,
  failureReason: null
})

// ---- reducers -------------------------------------------------------------

/** Keeps the event's time as the machine's clock. */
export const noteTime = (args: Args): Update => ({ now: nowOf(args) })

/** On entering a top-level state: when it was entered. A RESUME re-enters a state it was already in: `since` stays. */
export const stamp = (args: Args): Update =>
  args.event.type === "RESUME" ? { now: nowOf(args) } : { now: nowOf(args), since: nowOf(args) }

/** A launch (first start or restart) begins: the next attempt number. */
export const beginAttempt = ({ context }: Args): Update => ({ attempt: context.attempt + 1 })

/** The launch succeeded: the process runs, healthy until a probe says otherwise. */
export const recordLaunch = (args: Args): Update => {
  const output = out<LaunchOutput>(args.event)
  if (!output.ok) throw new Error("service: recordLaunch on a failed launch")
  return { now: output.at, pid: output.pid, lastError: null, unhealthyCount: 0, health: null, healthySince: output.at }
}

/** The launch failed (the actor answered `ok: false`, or threw): no process runs; it counts as a crash. */
export const recordLaunchFailure = (args: Args): Update => {
  const event = args.event
  if (event.type.startsWith("xstate.error.actor.")) {
    const error = (event as unknown as { readonly error: unknown }).error
    return { pid: null, lastError: `launch threw: ${error instanceof Error ? error.message : String(error)}` }
  }
  const output = out<LaunchOutput>(event)
  return { now: output.at, pid: null, lastError: output.ok ? null : `launch failed: ${output.error}` }
}

/** The process is gone (the watch saw it exit). */
export const recordExit = ({ event }: Args): Update => {
  assertEvent(event as ServiceEvent, "EXITED")
  const e = event as Extract<ServiceEvent, { type: "EXITED" }>
  return { now: e.at, pid: null, lastExit: { code: e.code, signal: e.signal, at: e.at } }
}

/** The process is confirmed gone after `terminate`. */
export const recordTerminated = (args: Args): Update => ({ now: out<TerminateOutput>(args.event).at, pid: null })

/** A probe's answer; consecutive failures are counted, a pass clears the count. */
export const recordHealth = ({ context, event }: Args): Update => {
  assertEvent(event as ServiceEvent, "HEALTH")
  const e = event as Extract<ServiceEvent, { type: "HEALTH" }>
  return { now: e.at, health: { ok: e.ok, detail: e.detail, at: e.at }, unhealthyCount: e.ok ? 0 : context.unhealthyCount + 1 }
}

/** Healthy again after failing probes: a new healthy run begins now. */
export const beginHealthyRun = (args: Args): Update => ({ healthySince: nowOf(args) })

/** A restart the policy issues (a crash, a failed launch, a wedged process): counted towards the intensity limit. */
export const countRestart = (args: Args): Update => {
  const now = nowOf(args)
  return { restarts: args.context.restarts + 1, recentRestarts: [...inWindow(args.context, now), now] }
}

/** Schedules the next restart after the exponential backoff, as an absolute time. */
export const scheduleBackoff = (args: Args): Update => {
  const now = nowOf(args)
  const n = args.context.backoffCount + 1
  return { backoffCount: n, backoffUntil: now + backoffMs(args.context.policy, n) }
}

/** The backoff is over: the clock stands at its end (the delay event carries no time). */
export const endBackoff = ({ context }: Args): Update => ({ now: context.backoffUntil ?? context.now, backoffUntil: null })

/** The run stayed healthy for `healthyResetMs`: the next crash backs off from the start again. */
export const resetBackoff = ({ context }: Args): Update => ({
  now: Math.max(context.now, (context.healthySince ?? context.now) + context.policy.healthyResetMs),
  backoffCount: 0
})

/** What set off the restart that would go over the limit, for the alert. */
export interface FailParams {
  readonly cause: "exit" | "launch" | "watch" | "health"
}

/** Why the service is about to fail: more restarts within the window than the policy allows. */
export const failOverLimit = ({ context }: Args, params: FailParams): Update => {
  const last =
    params.cause === "exit" && context.lastExit !== null
      ? describeExit(context.lastExit)
      : params.cause === "launch" || params.cause === "watch"
        ? (context.lastError ?? `${params.cause} failed`)
        : `unhealthy: ${context.health?.detail ?? "no detail"}`
  return { failureReason: `more than ${context.policy.maxRestarts} restarts within ${context.policy.withinSeconds} s (last: ${last})` }
}

/** Why the service is about to fail: its process could not be confirmed gone, so nothing new may start. */
export const failOnTerminateError = ({ context, event }: Args): Update => {
  const error = (event as unknown as { readonly error?: unknown }).error
  return {
    failureReason: `could not confirm that pid ${context.pid ?? "(unknown)"} is gone: ${error instanceof Error ? error.message : String(error)}`
  }
}

/** The watch on the process failed: whether the process lives is unknown, so it is terminated before anything else. */
export const recordWatchFailure = ({ event }: Args): Update => {
  const error = (event as unknown as { readonly error?: unknown }).error
  return { lastError: `watch failed: ${error instanceof Error ? error.message : String(error)}` }
}

/** Why the service is about to fail: it exited with a code the policy says not to restart. */
export const failOnPreventedExit = ({ context }: Args): Update => ({
  failureReason: `exited with code ${context.lastExit?.code}, which preventRestartExitCodes says not to restart`
})

/** An operator START (or RESTART) of a stopped or failed service: the limit and the backoff start afresh. */
export const resetForOperatorStart = (args: Args): Update => ({
  now: nowOf(args),
  recentRestarts: [],
  backoffCount: 0,
  backoffUntil: null,
  failureReason: null,
  unhealthyCount: 0
})

const describeExit = (exit: NonNullable<ServiceContext["lastExit"]>): string =>
  exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code}`

// ---- guards ---------------------------------------------------------------

/** The launch actor answered `ok: true`. */
export const launched = ({ event }: Args): boolean => out<LaunchOutput>(event).ok

/** The process exited with a code the policy names as "do not restart" (systemd's `RestartPreventExitStatus`). */
export const exitPreventsRestart = ({ context, event }: Args): boolean => {
  assertEvent(event as ServiceEvent, "EXITED")
  const code = (event as Extract<ServiceEvent, { type: "EXITED" }>).code
  return code !== null && context.policy.preventRestartExitCodes.includes(code)
}

/** One more restart now would make more than `maxRestarts` within `withinSeconds`. */
export const restartLimitReached = (args: Args): boolean =>
  inWindow(args.context, nowOf(args)).length + 1 > args.context.policy.maxRestarts

/** This failing probe is the `unhealthyAfter`-th in a row. */
export const unhealthyLimitReached = ({ context, event }: Args): boolean => {
  assertEvent(event as ServiceEvent, "HEALTH")
  return !(event as Extract<ServiceEvent, { type: "HEALTH" }>).ok && context.unhealthyCount + 1 >= (context.policy.unhealthyAfter ?? DEFAULT_UNHEALTHY_AFTER)
}

/** The `unhealthyAfter`-th failing probe, and restarting would go over the intensity limit. */
export const wedgedOverLimit = (args: Args): boolean => unhealthyLimitReached(args) && restartLimitReached(args)

/** A probe passed. */
export const probePassed = ({ event }: Args): boolean => {
  assertEvent(event as ServiceEvent, "HEALTH")
  return (event as Extract<ServiceEvent, { type: "HEALTH" }>).ok
}

/** A process of the service may still live (a pid we have not seen exit). */
export const processMayLive = ({ context }: Args): boolean => context.pid !== null

/** The service is being stopped on its way to `failed` (a wedged process over the limit), not by the operator. */
export const failurePending = ({ context }: Args): boolean => context.failureReason !== null

/** The policy has a health probe to run. */
export const hasHealthCheck = ({ context }: Args): boolean => context.policy.hasHealthCheck
