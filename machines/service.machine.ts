/**
 * The lifecycle of one supervised service (a child of the root supervisor,
 * systemId `service:<name>`): started, watched and probed, restarted with
 * exponential backoff after a crash, given up on (`failed`, one alert) when it
 * restarts more than `maxRestarts` times within `withinSeconds` (OTP's restart
 * intensity, systemd's `StartLimitBurst`) or exits with a code the policy says
 * not to restart (systemd's `RestartPreventExitStatus`).
 *
 *   starting ──ok──▶ running.checking ──probe passes──▶ running.healthy ⇄ running.unhealthy
 *      │ failed          │ EXITED (any running state)           │ unhealthyAfter failing probes
 *      ▼                 ▼                 ▼
 *   backingOff ──after backoff──▶ restarting (terminating ▶ launching) ──ok──▶ running
 *   any of these ──STOP──▶ stopping ──▶ stopped ──START──▶ starting
 *   over the limit, or a "do not restart" exit ──▶ failed ──START──▶ starting
 *
 * A restart is only ever issued once the previous process is confirmed gone:
 * `backingOff` is entered only after the watch saw the process exit (or the
 * launch failed, so none runs), and `restarting` from a running process goes
 * through `restarting.terminating` (the `terminate` actor resolves once the
 * process group is gone) before `restarting.launching`.
 *
 * Pure: imports only xstate. Effects are the actors `launch`, `watch`, `probe`
 * and `terminate`, provided by the daemon (`src/services/serviceActors.ts`); the
 * placeholders here throw so an unprovided one fails loudly. Time comes only
 * from events' and outputs' `at` and from delays computed from absolute times
 * in context, so a restored snapshot re-arms its timers on RESUME.
 *
 * Tags: `up` on `running` (both sub-states). `stopped` and `failed` are not
 * final: the operator can START (or RESTART) the service again.
 */
import { assign, emit, enqueueActions, fromCallback, fromPromise, not, setup, stopChild } from "xstate"
import * as r from "./service.reducers.js"
import { notProvided } from "./actorPlaceholder.js"

/** How the service is restarted; compiled from config (`services.<name>.restart` and friends) with defaults filled in. */
export interface ServicePolicy {
  readonly mode: "process" | "systemd"
  /** The first backoff (default 1000). */
  readonly backoffInitialMs: number
  /** Each consecutive restart multiplies the backoff by this (default 2). */
  readonly backoffFactor: number
  /** The backoff never exceeds this (default 60000). */
  readonly backoffMaxMs: number
  /** More than this many restarts within `withinSeconds` -> `failed` (default 5). */
  readonly maxRestarts: number
  /** The intensity window (default 60). */
  readonly withinSeconds: number
  /** A run healthy this long resets the backoff (default 30000). */
  readonly healthyResetMs: number
  /** Exit codes that go straight to `failed` (e.g. 78, a bad config). */
  readonly preventRestartExitCodes: ReadonlyArray<number>
  /** Without a probe, running counts as healthy. */
  readonly hasHealthCheck: boolean
  /** Consecutive failing probes after which the service is restarted (default 3). */
  readonly unhealthyAfter?: number
}

export interface ServiceInput {
  readonly name: string
  readonly policy: ServicePolicy
  /** When the actor is created (epoch ms): the first `since`. Optional; the launch's `at` follows at once. */
  readonly at?: number
}

export interface LaunchInput {
  readonly name: string
  readonly attempt: number
}
export type LaunchOutput =
  | { readonly ok: true; readonly pid: number; readonly at: number }
  | { readonly ok: false; readonly error: string; readonly at: number }
export interface WatchInput {
  readonly name: string
  readonly pid: number
}
export interface ProbeInput {
  readonly name: string
}
export interface TerminateInput {
  readonly name: string
  /** `null` when the pid is not known (a launch interrupted half way): the actor stops whatever of the service it finds. */
  readonly pid: number | null
}
export interface TerminateOutput {
  readonly at: number
}

export type ServiceEvent =
  /** Operator: start a stopped or failed service (the intensity window and the backoff start afresh). */
  | { readonly type: "START"; readonly at: number }
  /** Operator: stop the service (terminate its process) and keep it stopped. */
  | { readonly type: "STOP"; readonly at: number }
  /** Operator: terminate, then start again, not counted towards the intensity limit. */
  | { readonly type: "RESTART"; readonly at: number }
  /** After a restore: re-arms the timers (XState does not re-arm restored `after` delays). */
  | { readonly type: "RESUME"; readonly at: number }
  /** From `watch`: the process is gone. */
  | { readonly type: "EXITED"; readonly code: number | null; readonly signal: string | null; readonly at: number }
  /** From `probe`, each interval. */
  | { readonly type: "HEALTH"; readonly ok: boolean; readonly detail: string; readonly at: number }

/** The one event the machine emits: the service failed (once per failure). */
export interface ServiceAlert {
  readonly type: "alert"
  readonly name: string
  readonly reason: string
}

export type ServiceStateName = "starting" | "running" | "backingOff" | "restarting" | "stopping" | "stopped" | "failed"

export interface ServiceContext {
  readonly name: string
  readonly policy: ServicePolicy
  /** The latest time the machine has seen (epoch ms, from events and outputs). */
  readonly now: number
  readonly pid: number | null
  /** Launches so far (1 for the first). */
  readonly attempt: number
  /** Restarts issued by the policy, in total (operator restarts are not counted). */
  readonly restarts: number
  /** When the policy's restarts within the intensity window were issued. */
  readonly recentRestarts: ReadonlyArray<number>
  /** Consecutive restarts since the last healthy run: the exponent of the next backoff. */
  readonly backoffCount: number
  /** When the current backoff ends (absolute, so it is re-armed after a restore). */
  readonly backoffUntil: number | null
  /** When the current healthy run began. */
  readonly healthySince: number | null
  /** Consecutive failing probes. */
  readonly unhealthyCount: number
  readonly lastExit: { readonly code: number | null; readonly signal: string | null; readonly at: number } | null
  /** The last launch or watch failure. */
  readonly lastError: string | null
  readonly health: { readonly ok: boolean; readonly detail: string; readonly at: number } | null
  /** When the current top-level state was entered. */
  readonly since: number | null
  /** Why the service failed (set on the way to `failed`, cleared by START). */
  readonly failureReason: string | null
}


const failOverLimit = (cause: r.FailParams["cause"]) => ({ type: "failOverLimit", params: { cause } }) as const

/** A launch that did not give a running process counts as a crash: over the limit it fails, else it backs off. */
const launchFailed = [
  { guard: "restartLimitReached", target: "#service.failed", actions: ["recordLaunchFailure", failOverLimit("launch")] },
  { target: "#service.backingOff", actions: ["recordLaunchFailure", "countRestart", "scheduleBackoff"] }
] as const

/** The `unhealthyAfter`-th failing probe: the wedged process is terminated, then started again (or, over the limit, terminated for good). */
const wedged = [
  {
    guard: "wedgedOverLimit",
    target: "#service.stopping",
    actions: ["recordHealth", failOverLimit("health")]
  },
  { guard: "unhealthyLimitReached", target: "#service.restarting.terminating", actions: ["recordHealth", "countRestart"] }
] as const

export const serviceMachine = setup({
  types: {
    context: {} as ServiceContext,
    events: {} as ServiceEvent,
    input: {} as ServiceInput,
    emitted: {} as ServiceAlert,
    tags: {} as "up"
  },
  actors: {
    launch: fromPromise<LaunchOutput, LaunchInput>(notProvided("service", "launch")),
    watch: fromCallback<ServiceEvent, WatchInput>(notProvided("service", "watch")),
    probe: fromCallback<ServiceEvent, ProbeInput>(notProvided("service", "probe")),
    terminate: fromPromise<TerminateOutput, TerminateInput>(notProvided("service", "terminate"))
  },
  delays: {
    /** Time left before the absolute end of the backoff. */
    backoff: ({ context }) => Math.max(0, (context.backoffUntil ?? context.now) - context.now),
    /** Time left before the current healthy run has lasted `healthyResetMs`. */
    healthyReset: ({ context }) => Math.max(0, (context.healthySince ?? context.now) + context.policy.healthyResetMs - context.now)
  },
  guards: {
    launched: r.launched,
    exitPreventsRestart: r.exitPreventsRestart,
    restartLimitReached: r.restartLimitReached,
    unhealthyLimitReached: r.unhealthyLimitReached,
    wedgedOverLimit: r.wedgedOverLimit,
    probePassed: r.probePassed,
    failurePending: r.failurePending,
    hasHealthCheck: r.hasHealthCheck
  },
  actions: {
    noteTime: assign(r.noteTime),
    stamp: assign(r.stamp),
    beginAttempt: assign(r.beginAttempt),
    recordLaunch: assign(r.recordLaunch),
    recordLaunchFailure: assign(r.recordLaunchFailure),
    recordExit: assign(r.recordExit),
    recordTerminated: assign(r.recordTerminated),
    recordHealth: assign(r.recordHealth),
    recordWatchFailure: assign(r.recordWatchFailure),
    beginHealthyRun: assign(r.beginHealthyRun),
    countRestart: assign(r.countRestart),
    scheduleBackoff: assign(r.scheduleBackoff),
    endBackoff: assign(r.endBackoff),
    resetBackoff: assign(r.resetBackoff),
    failOverLimit: assign((args, params: r.FailParams) => r.failOverLimit(args, params)),
    failOnPreventedExit: assign(r.failOnPreventedExit),
    failOnTerminateError: assign(r.failOnTerminateError),
    resetForOperatorStart: assign(r.resetForOperatorStart),
    /** Probes run only while running, and only when the policy has a health check. */
    startProbe: enqueueActions(({ context, enqueue, check }) => {
      if (check("hasHealthCheck")) enqueue.spawnChild("probe", { id: "probe", input: { name: context.name } })
    }),
    stopProbe: stopChild("probe"),
    alert: emit(({ context }) => ({ type: "alert" as const, name: context.name, reason: context.failureReason ?? "failed" }))
  }
}).createMachine({
  id: "service",
  context: ({ input }) => r.initialContext(input),
  initial: "starting",
  states: {
    /** The first launch (and each operator START): the process is started. */
    starting: {
      entry: ["stamp", "beginAttempt"],
      invoke: {
        src: "launch",
        input: ({ context }) => ({ name: context.name, attempt: context.attempt }),
        onDone: [{ guard: "launched", target: "running", actions: "recordLaunch" }, ...launchFailed],
        onError: launchFailed
      },
      on: { STOP: { target: "stopping", actions: "noteTime" } }
    },
    /** The process runs; the watch reports its exit, the probe (if any) its health. */
    running: {
      tags: ["up"],
      entry: ["stamp", "startProbe"],
      exit: "stopProbe",
      invoke: {
        src: "watch",
        input: ({ context }) => ({ name: context.name, pid: context.pid ?? -1 }),
        onError: [
          { guard: "restartLimitReached", target: "stopping", actions: ["recordWatchFailure", failOverLimit("watch")] },
          { target: "restarting.terminating", actions: ["recordWatchFailure", "countRestart"] }
        ]
      },
      on: {
        EXITED: [
          { guard: "exitPreventsRestart", target: "failed", actions: ["recordExit", "failOnPreventedExit"] },
          { guard: "restartLimitReached", target: "failed", actions: ["recordExit", failOverLimit("exit")] },
          { target: "backingOff", actions: ["recordExit", "countRestart", "scheduleBackoff"] }
        ],
        STOP: { target: "stopping", actions: "noteTime" },
        RESTART: { target: "restarting.terminating", actions: "noteTime" }
      },
      initial: "checking",
      states: {
        /**
         * Launched, not yet probed: healthy only once a probe passes (a process that runs is not yet a service
         * that answers). Without a probe there is nothing to wait for: healthy at once.
         */
        checking: {
          always: { guard: not("hasHealthCheck"), target: "healthy" },
          on: {
            HEALTH: [
              { guard: "probePassed", target: "healthy", actions: ["recordHealth", "beginHealthyRun"] },
              ...wedged,
              { target: "unhealthy", actions: "recordHealth" }
            ],
            RESUME: { target: "checking", reenter: true, actions: "noteTime" }
          }
        },
        /** Probes pass (or there are none); staying here for `healthyResetMs` resets the backoff. */
        healthy: {
          after: { healthyReset: { actions: "resetBackoff" } },
          on: {
            HEALTH: [{ guard: "probePassed", actions: "recordHealth" }, ...wedged, { target: "unhealthy", actions: "recordHealth" }],
            RESUME: { target: "healthy", reenter: true, actions: "noteTime" }
          }
        },
        /** Probes fail; `unhealthyAfter` failures in a row restart the process. */
        unhealthy: {
          on: {
            HEALTH: [
              { guard: "probePassed", target: "healthy", actions: ["recordHealth", "beginHealthyRun"] },
              ...wedged,
              { actions: "recordHealth" }
            ],
            RESUME: { target: "unhealthy", reenter: true, actions: "noteTime" }
          }
        }
      }
    },
    /** The process exited (or never started); the next launch waits out the exponential backoff. */
    backingOff: {
      entry: "stamp",
      after: { backoff: { target: "restarting.launching", actions: "endBackoff" } },
      on: {
        STOP: { target: "stopping", actions: "noteTime" },
        RESTART: { target: "restarting.launching", actions: "noteTime" },
        RESUME: { target: "backingOff", reenter: true, actions: "noteTime" }
      }
    },
    /** Terminates a process that may still live (confirmed gone before anything new starts), then launches again. */
    restarting: {
      entry: "stamp",
      on: { STOP: { target: "stopping", actions: "noteTime" } },
      initial: "terminating",
      states: {
        terminating: {
          invoke: {
            src: "terminate",
            input: ({ context }) => ({ name: context.name, pid: context.pid }),
            onDone: { target: "launching", actions: "recordTerminated" },
            // Not confirmed gone: nothing new may start beside it.
            onError: { target: "#service.failed", actions: "failOnTerminateError" }
          }
        },
        launching: {
          entry: "beginAttempt",
          invoke: {
            src: "launch",
            input: ({ context }) => ({ name: context.name, attempt: context.attempt }),
            onDone: [{ guard: "launched", target: "#service.running", actions: "recordLaunch" }, ...launchFailed],
            onError: launchFailed
          }
        }
      }
    },
    /** Terminates the process (SIGTERM, SIGKILL after the grace); ends `stopped`, or `failed` when the policy gave up. */
    stopping: {
      entry: "stamp",
      invoke: {
        src: "terminate",
        input: ({ context }) => ({ name: context.name, pid: context.pid }),
        onDone: [
          { guard: "failurePending", target: "failed", actions: "recordTerminated" },
          { target: "stopped", actions: "recordTerminated" }
        ],
        onError: { target: "failed", actions: "failOnTerminateError" }
      }
    },
    /** Stopped by the operator; nothing runs. */
    stopped: {
      entry: "stamp",
      on: {
        START: { target: "starting", actions: "resetForOperatorStart" },
        RESTART: { target: "starting", actions: "resetForOperatorStart" }
      }
    },
    /** Given up on: over the intensity limit, a "do not restart" exit, or a process that could not be stopped. One alert. */
    failed: {
      entry: ["stamp", "alert"],
      on: {
        START: { target: "starting", actions: "resetForOperatorStart" },
        RESTART: { target: "starting", actions: "resetForOperatorStart" }
      }
    }
  }
})

export type ServiceMachine = typeof serviceMachine
