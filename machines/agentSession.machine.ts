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
 *
 * Every decision is recorded by one action, `decide`, whose params say what was
 * decided and from where (see `DecideParams` in `agentSession.reducers.ts`).
 *
 * Tags: `final` on the final states. `holdsSlot` on every state in which the
 * session holds one of the supervisor's concurrency slots: from its admission
 * (leaving `queued`) until it enters `cleaning`, that is `preflight`,
 * `launching`, `running` (all its sub-states), `recording` and `verifying`.
 * `queued`, `backoff`, `cleaning`, `notifying`, `remembering`, `settling` and
 * the final states do not hold one: the slot is freed as the session's
 * terminal is ended, and a retry queues again for a new one.
 */
import { assign, fromCallback, fromPromise, setup } from "xstate"
import type {
  AttemptRef,
  CaptureInput,
  CaptureOutput,
  CleanInput,
  LaunchOutput,
  PreflightOutput,
  ReportInput,
  SessionContext,
  SessionEvent,
  SessionInput,
  SessionOutput,
  SessionTag,
  NotifyOutput,
  StepOutput,
  VerifyInput,
  VerifyOutput,
  WatchInput
} from "./agentSession.types.js"
import * as guards from "./agentSession.guards.js"
import { initialContext, type DecideParams } from "./agentSession.reducers.js"
import * as reduce from "./agentSession.reducers.js"
import { notProvided } from "./actorPlaceholder.js"

/** The `decide` action with its params: what was decided (`kind`), from where (`source`), by which step (`step`). */
const decide = (kind: DecideParams["kind"], source: DecideParams["source"], step?: DecideParams["step"]) =>
  ({ type: "decide", params: step === undefined ? { kind, source } : { kind, source, step } }) as const


export const agentSessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    output: {} as SessionOutput,
    tags: {} as SessionTag
  },
  actors: {
    preflight: fromPromise<PreflightOutput, AttemptRef>(notProvided("agentSession", "preflight")),
    launch: fromPromise<LaunchOutput, AttemptRef>(notProvided("agentSession", "launch")),
    watchAgent: fromCallback<SessionEvent, WatchInput>(notProvided("agentSession", "watchAgent")),
    capture: fromPromise<CaptureOutput, CaptureInput>(notProvided("agentSession", "capture")),
    verify: fromPromise<VerifyOutput, VerifyInput>(notProvided("agentSession", "verify")),
    clean: fromPromise<StepOutput, CleanInput>(notProvided("agentSession", "clean")),
    notify: fromPromise<NotifyOutput, ReportInput>(notProvided("agentSession", "notify")),
    remember: fromPromise<StepOutput, ReportInput>(notProvided("agentSession", "remember"))
  },
  delays: {
    /** Time left before the attempt's absolute deadline. */
    attemptDeadline: ({ context }) => Math.max(0, (context.deadlineAt ?? context.now) - context.now),
    /** No output for this long is a stall. */
    stallTime: ({ context }) => context.policy.stallMs,
    /** Time left before the absolute end of the retry backoff. */
    retryBackoff: ({ context }) => Math.max(0, (context.backoffUntil ?? context.now) - context.now)
  },
  guards,
  actions: {
    decide: assign(reduce.decide),
    startAttempt: assign(reduce.startAttempt),
    recordPreflight: assign(reduce.recordPreflight),
    recordLaunch: assign(reduce.recordLaunch),
    recordCapture: assign(reduce.recordCapture),
    recordVerification: assign(reduce.recordVerification),
    noteResume: assign(reduce.noteResume),
    noteReport: assign(reduce.noteReport),
    noteOutput: assign(reduce.noteOutput),
    ignoreSignal: assign(reduce.ignoreSignal),
    requestCancel: assign(reduce.requestCancel),
    stamp: assign(reduce.stamp),
    recordNotify: assign(reduce.recordNotify),
    decideRetry: assign(reduce.decideRetry),
    scheduleRetry: assign(reduce.scheduleRetry),
    archiveAttempt: assign(reduce.archiveAttempt),
    finishCancelled: assign(reduce.finishCancelled)
  }
}).createMachine({
  id: "agentSession",
  context: ({ input }) => initialContext(input),
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
      tags: ["holdsSlot"],
      invoke: {
        src: "preflight",
        input: ({ context }) => ({ bead: context.bead, attempt: context.attempt, attemptId: null }),
        onDone: [
          { guard: "preflightPassed", target: "launching", actions: "recordPreflight" },
          { target: "recording", actions: ["recordPreflight", decide("failed", "preflight")] }
        ],
        onError: { target: "recording", actions: decide("failed", "preflight", "preflight") }
      },
      on: { CANCEL: { target: "recording", actions: decide("cancelled", "operator") } }
    },
    /** Creates the tmux session, starts the transcript and delivers the prompt once the agent can read it. */
    launching: {
      tags: ["holdsSlot"],
      invoke: {
        src: "launch",
        input: ({ context }) => ({ bead: context.bead, attempt: context.attempt, attemptId: context.attemptId }),
        onDone: [
          { guard: "launched", target: "running", actions: "recordLaunch" },
          { target: "recording", actions: ["recordLaunch", decide("failed", "launch")] }
        ],
        onError: { target: "recording", actions: decide("failed", "launch", "launch") }
      },
      after: { attemptDeadline: { target: "recording", actions: decide("timeout", "deadline") } },
      on: { CANCEL: { target: "recording", actions: decide("cancelled", "operator") } }
    },
    /** The agent works; completion is whichever enabled source fires first, or the deadline. */
    running: {
      tags: ["holdsSlot"],
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
        onError: { target: "recording", actions: decide("failed", "launch", "watch") }
      },
      on: {
        CANCEL: { target: "recording", actions: decide("cancelled", "operator") },
        "AGENT.SIGNAL": [
          { guard: "signalIsStale", actions: "ignoreSignal" },
          { guard: "signalUnattributedBeforeLaunch", actions: "ignoreSignal" },
          { guard: "signalDone", target: "recording", actions: decide("done", "agent") },
          { guard: "signalFailed", target: "recording", actions: decide("failed", "agent") },
          { target: ".waitingInput", actions: decide("waiting-input", "agent") }
        ],
        "AGENT.MARKER": [
          { guard: "markerDone", target: "recording", actions: decide("done", "marker") },
          { target: "recording", actions: decide("failed", "marker") }
        ],
        "AGENT.IDLE": { target: "recording", actions: decide("done", "idle-prompt") },
        "AGENT.EXITED": [
          { guard: "exitedCleanly", target: "recording", actions: decide("done", "exit") },
          { guard: "sessionLost", target: "recording", actions: decide("failed", "session-lost") },
          { target: "recording", actions: decide("failed", "exit") }
        ],
        "AGENT.REPORT": { actions: "noteReport" },
        "AGENT.DELIVERY_FAILED": { target: "recording", actions: decide("failed", "launch") }
      },
      initial: "working",
      states: {
        /** Output is flowing; no output for the profile's stall time is a stall. */
        // The deadline is armed in each sub-state (from the absolute `deadlineAt`), so re-entering
        // one after a restore (RESUME) re-arms it without losing where the session was.
        working: {
          after: {
            attemptDeadline: { target: "#agentSession.recording", actions: decide("timeout", "deadline") },
            stallTime: { target: "stalled", actions: decide("stalled", "stall-timer") }
          },
          on: {
            "AGENT.OUTPUT": { target: "working", reenter: true, actions: "noteOutput" },
            "AGENT.DIALOG": { target: "waitingInput", actions: decide("waiting-input", "dialog") },
            RESUME: { target: "working", reenter: true, actions: "noteResume" }
          }
        },
        /** No output for the stall time; the deadline still runs, and output brings it back. */
        stalled: {
          after: { attemptDeadline: { target: "#agentSession.recording", actions: decide("timeout", "deadline") } },
          on: {
            "AGENT.OUTPUT": { target: "working", actions: ["noteOutput", decide("resumed", "stall-timer")] },
            "AGENT.DIALOG": { target: "waitingInput", actions: decide("waiting-input", "dialog") },
            RESUME: { target: "stalled", reenter: true, actions: "noteResume" }
          }
        },
        /** A dialog or question waits for an answer (`warden send`); not done, not a stall; the deadline runs. */
        waitingInput: {
          after: { attemptDeadline: { target: "#agentSession.recording", actions: decide("timeout", "deadline") } },
          on: {
            RESUME: { target: "waitingInput", reenter: true, actions: "noteResume" },
            "AGENT.DIALOG_CLEARED": { target: "working", actions: ["noteOutput", decide("resumed", "waiting")] },
            // A wait the agent announced (a question, a permission prompt) ends when the operator answers (`warden send`).
            "AGENT.INPUT": { guard: "waitingFromSignal", target: "working", actions: ["noteOutput", decide("resumed", "operator")] }
          }
        }
      }
    },
    /** Captures the screen (before anything is killed) as the output summary; records are written. */
    recording: {
      tags: ["holdsSlot"],
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
      tags: ["holdsSlot"],
      invoke: {
        src: "verify",
        input: ({ context }) => ({
          bead: context.bead,
          attempt: context.attempt,
          attemptId: context.attemptId,
          baseCommit: context.launch?.baseCommit ?? null
        }),
        onDone: [
          { guard: "verificationPassed", target: "cleaning", actions: ["recordVerification", decide("done", "verification")] },
          { target: "cleaning", actions: ["recordVerification", decide("failed", "verification")] }
        ],
        onError: { target: "cleaning", actions: decide("failed", "verification") }
      },
      on: { CANCEL: { target: "cleaning", actions: decide("cancelled", "operator") } }
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
        onDone: { target: "remembering", actions: "recordNotify" },
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
    done: { type: "final", tags: ["final"] },
    /** The last attempt failed (agent, launch, preflight or verification) and no retry is left. */
    failed: { type: "final", tags: ["final"] },
    /** The last attempt ran past its deadline and no retry is left. */
    timeout: { type: "final", tags: ["final"] },
    /** An operator cancelled the bead. */
    cancelled: { type: "final", tags: ["final"] }
  }
})

export type AgentSessionMachine = typeof agentSessionMachine
