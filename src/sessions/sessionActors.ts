import * as fs from "node:fs"
import * as path from "node:path"
import { randomUUID } from "node:crypto"
import { Clock, Effect } from "effect"
import { fromCallback, fromPromise, type AnyStateMachine } from "xstate"
import { agentSessionMachine } from "../../machines/agentSession.machine.js"
import type {
  AttemptRef,
  CaptureOutput,
  LaunchOutput,
  NotifyOutput,
  PreflightOutput,
  SessionContext,
  SessionEvent,
  StepOutput,
  VerifyOutput,
  WatchInput
} from "../../machines/agentSession.types.js"
import { Git } from "../git/Git.js"
import { Processes } from "../processes/Processes.js"
import { AgentProcesses } from "../processes/agentProcesses.js"
import { RecordStore } from "../records/RecordStore.js"
import { localDate, memoryLine, type SessionView } from "../records/buildRecords.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { inputKeyFile } from "./operatorInput.js"
import { expandHome } from "../workspace/paths.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import { launchAttempt, launchScope, markRemembered, wasRemembered } from "./launch.js"
import { runPreflight } from "./preflight.js"
import { runVerification } from "./verify.js"
import { startWatch, stripAnsi } from "./watchAgent.js"
import { reportFromLines } from "../agents/agentOutput.js"
import { readTail } from "../workspace/readRange.js"
import type { EffectRunner } from "./effectRunner.js"

/** What the session's effects need from the world. */
export type SessionServices = Terminals | Processes | Git | RecordStore | AgentProcesses

export interface SessionHooks {
  /** The records as they stand now (the observer owns the state history). */
  readonly records: () => ReturnType<typeof import("../records/buildRecords.js").buildRecords>
  readonly log: (message: string, detail?: Record<string, unknown>) => void
  /** True while the supervisor lets go of the session (daemon stop): interrupted effects leave the agent alone. */
  readonly detaching?: () => boolean
}

/** A new attempt id: unique across retries and restarts, short enough to read. */
export const newAttemptId = (): string => `att-${randomUUID().replace(/-/g, "").slice(0, 16)}`

const repoPath = (spec: DispatchSpec): string => {
  const resolved = path.resolve(expandHome(spec.repo))
  try {
    return fs.realpathSync(resolved)
  } catch {
    // Not there (or not reachable): verification runs on the path as given and reports what it finds there.
    return resolved
  }
}

/** The seed's wake text for a finished attempt: `Agent <bead> <status> (<s>s, <agent>, attempt <n>/<max>, reason: <reason>)`. */
export const wakeText = (
  run: { readonly bead: string; readonly status: string; readonly duration_seconds?: number | null; readonly agent: string; readonly attempt: number; readonly max_retries?: number },
  result: { readonly reason: string }
): string => `Agent ${run.bead} ${run.status} (${run.duration_seconds ?? 0}s, ${run.agent}, attempt ${run.attempt}/${run.max_retries ?? run.attempt}, reason: ${result.reason})`

/**
 * What the agent left on its screen: without tmux's note on a dead pane (remain-on-exit) and the blank rows
 * below its last line, so a decision's screen evidence ends with the agent's own last lines (its marker, its
 * report), not with "Pane is dead".
 */
export const agentLines = (screen: ReadonlyArray<string>): ReadonlyArray<string> => {
  const lines = screen.filter((line) => !/^Pane is dead \(/.test(line))
  let end = lines.length
  while (end > 0 && lines[end - 1]!.trim() === "") end -= 1
  return lines.slice(0, end)
}

/** The output summary: the last 500 characters of the screen (the transcript's tail when the screen is gone). */
export const outputSummaryOf = (screen: ReadonlyArray<string>): string | null => {
  const text = agentLines(screen)
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim()
  return text === "" ? null : text.slice(-500)
}

/** The transcript's text (its last `maxBytes`), without terminal escapes, as lines. */
const transcriptLines = (file: string | null, maxBytes: number): ReadonlyArray<string> => {
  if (file === null) return []
  return stripAnsi(readTail(file, maxBytes).toString("utf8")).split(/\r?\n|\r/)
}

/** What the seam knows of one bead's session: its spec (never in the persisted snapshot: it holds the dispatcher's environment) and hooks. */
export interface SessionEntry {
  readonly spec: DispatchSpec
  readonly hooks: SessionHooks
}

/** Finds a bead's session; every actor input names its bead. */
export type SessionLookup = (bead: string) => SessionEntry

/**
 * The one seam between the lifecycle machine and Effect: each named actor of
 * the machine runs an Effect on the session's runtime. Leaving a state stops
 * its actor, which aborts the signal, which interrupts the effect. Actors
 * return data, never reject, so guards branch on plain fields.
 *
 * One set of implementations serves every bead of a tree: each actor finds its
 * bead's spec through `lookup` from its input (a child's implementations are
 * fixed when the root is provided, so they cannot close over one bead).
 */
export const sessionImplementations = (lookup: SessionLookup, runtime: EffectRunner<SessionServices>) => {
  // Each effect starts after the tick that entered its state: XState starts a state's actors before
  // it tells observers of the new state, and the daemon saves the snapshot there. A supervisor killed
  // at any moment so restarts from a snapshot that is never behind what the state's effects did.
  const run = <A>(effect: Effect.Effect<A, never, SessionServices>, signal: AbortSignal) =>
    Promise.resolve().then(() => runtime.runPromise(effect, { signal }))

  return {
    actors: {
      preflight: fromPromise<PreflightOutput, AttemptRef>(({ input, signal }) => {
        const { spec } = lookup(input.bead)
        return run(
          Effect.gen(function* () {
            const checks = yield* runPreflight(spec)
            const at = yield* Clock.currentTimeMillis
            return { at, attemptId: newAttemptId(), ok: checks.every((c) => c.ok || c.advisory === true), checks }
          }),
          signal
        )
      }),
      launch: fromPromise<LaunchOutput, AttemptRef>(({ input, signal }) => {
        const { spec, hooks } = lookup(input.bead)
        const failed = (reason: string) =>
          Effect.map(Clock.currentTimeMillis, (at): LaunchOutput => ({
            at,
            ok: false,
            error: reason,
            sessionName: "",
            transcriptPath: null,
            baseCommit: null,
            screen: [],
            signalsOffset: 0,
            promptPending: false
          }))
        return run(
          launchAttempt(spec, input.attemptId ?? newAttemptId(), input.attempt, () => hooks.detaching?.() !== true).pipe(
            Effect.catchAll((error) => failed(`${error.operation} ${error.session}: ${error.message}`)),
            Effect.catchAllDefect((defect) => failed(`launch failed: ${defect instanceof Error ? defect.message : String(defect)}`))
          ),
          signal
        )
      }),
      watchAgent: fromCallback<SessionEvent, WatchInput>(({ input, sendBack }) => {
        const { spec, hooks } = lookup(input.bead)
        return runtime.runSync(
          Effect.map(Terminals, (terminals) =>
            startWatch({ spec, terminals, now: () => Date.now(), log: hooks.log }, input, sendBack)
          )
        )
      }),
      capture: fromPromise<CaptureOutput, AttemptRef & { sessionName: string | null }>(({ input, signal }) => {
        const { spec } = lookup(input.bead)
        return run(
          Effect.gen(function* () {
            const terminals = yield* Terminals
            const fromScreen =
              input.sessionName === null
                ? []
                : yield* terminals.capture(input.sessionName, 200).pipe(Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)))
            const transcript =
              input.attemptId === null ? null : spec.paths.transcriptFile(spec.bead, input.attemptId)
            const screen = fromScreen.length > 0 ? fromScreen : transcriptLines(transcript, 8_192)
            const format = spec.profile.config.output
            const report = format === "text" ? null : reportFromLines(format, transcriptLines(transcript, 16 * 1024 * 1024))
            const at = yield* Clock.currentTimeMillis
            return { at, outputSummary: outputSummaryOf(screen), screen: agentLines(screen).slice(-40), report }
          }),
          signal
        )
      }),
      verify: fromPromise<VerifyOutput, AttemptRef & { baseCommit: string | null }>(({ input, signal }) => {
        const { spec } = lookup(input.bead)
        return run(
          runVerification(
            spec.config,
            repoPath(spec),
            input.baseCommit,
            { ...spec.env },
            input.attemptId === null ? {} : launchScope(spec.paths.launchRecordFile(spec.bead, input.attemptId))
          ),
          signal
        )
      }),
      clean: fromPromise<StepOutput, AttemptRef & { sessionName: string | null; launchInterrupted: boolean }>(({ input, signal }) => {
        const { spec, hooks } = lookup(input.bead)
        return run(
          Effect.gen(function* () {
            const terminals = yield* Terminals
            // Preflight made sure no session of this name was live, so one there now is this attempt's.
            const name = input.sessionName ?? (input.launchInterrupted ? sessionNameFor(spec.bead) : null)
            if (name !== null && name !== "") {
              yield* terminals.kill(name).pipe(
                Effect.catchAll((error) => Effect.sync(() => hooks.log("could not kill the session", { reason: error.message })))
              )
            }
            if (input.attemptId !== null) {
              // The session's end ends all of the attempt: what left the pane's process group too.
              const agentProcesses = yield* AgentProcesses
              const reaped = yield* agentProcesses.reap(input.attemptId)
              if (reaped.length > 0) hooks.log("ended the attempt's remaining processes", { attempt_id: input.attemptId, pids: reaped })
              // The launch record stays: `remember`, after this step, marks in it that the memory line is written
              // (once per attempt across restarts); retention removes it with the attempt's other files.
              for (const file of [
                spec.paths.envFile(spec.bead, input.attemptId),
                spec.paths.promptFile(spec.bead, input.attemptId),
                spec.paths.launcherFile(spec.bead, input.attemptId),
                spec.paths.settingsFile(spec.bead, input.attemptId),
                spec.paths.exitFile(spec.bead, input.attemptId),
                inputKeyFile(spec.paths, spec.bead, input.attemptId)
              ]) {
                fs.rmSync(file, { force: true })
              }
            }
            return { at: yield* Clock.currentTimeMillis }
          }),
          signal
        )
      }),
      notify: fromPromise<NotifyOutput, AttemptRef & { context: SessionContext }>(({ input, signal }) => {
        const { spec, hooks } = lookup(input.bead)
        const command = spec.config.notify.command
        return run(
          Effect.gen(function* () {
            // The coordinator hears of every state through the feed; a configured command is woken once per attempt.
            if (command === undefined) return { at: yield* Clock.currentTimeMillis, delivery: null }
            const { run: record, result } = hooks.records()
            const text = wakeText(record, result)
            const [program, ...args] = command.argv.map((arg) => arg.split("{text}").join(text))
            const processes = yield* Processes
            const ran = yield* processes
              .run(program!, args, { cwd: spec.paths.root, timeoutMs: command.timeoutMs, tailChars: 300 })
              .pipe(Effect.either)
            const at = yield* Clock.currentTimeMillis
            const delivery =
              ran._tag === "Left"
                ? { channel: "command" as const, ok: false, detail: ran.left.message, text, at }
                : ran.right.exitCode === 0
                  ? { channel: "command" as const, ok: true, detail: `${program} exited 0`, text, at }
                  : {
                      channel: "command" as const,
                      ok: false,
                      detail: `${program} ${ran.right.timedOut ? `timed out after ${command.timeoutMs} ms` : `exited ${ran.right.exitCode ?? ran.right.signal}`}: ${ran.right.outputTail.trim()}`,
                      text,
                      at
                    }
            if (!delivery.ok) hooks.log("the notify command failed (the bead's outcome stands)", { detail: delivery.detail })
            return { at, delivery }
          }),
          signal
        )
      }),
      remember: fromPromise<StepOutput, AttemptRef & { context: SessionContext }>(({ input, signal }) => {
        const { spec, hooks } = lookup(input.bead)
        return run(
          Effect.gen(function* () {
            const records = yield* RecordStore
            const at = yield* Clock.currentTimeMillis
            // Once per attempt: a supervisor killed after the append runs this step again on restore.
            const launchRecord = input.attemptId === null ? null : spec.paths.launchRecordFile(spec.bead, input.attemptId)
            if (launchRecord !== null && wasRemembered(launchRecord)) return { at }
            const { run: runRecord, result } = hooks.records()
            yield* records.appendMemory(localDate(at), memoryLine(runRecord, result)).pipe(
              Effect.tap(() => Effect.sync(() => launchRecord !== null && markRemembered(launchRecord))),
              Effect.catchAll((error) => Effect.sync(() => hooks.log("memory line not written", { reason: error.message })))
            )
            return { at }
          }),
          signal
        )
      })
    }
  } satisfies { actors: Record<keyof typeof agentSessionMachine.implementations.actors, unknown> }
}

/** One bead's session on its own (the foreground CLI): no parent, no tree. */
export const provideSession = (
  spec: DispatchSpec,
  runtime: EffectRunner<SessionServices>,
  hooks: SessionHooks
) => agentSessionMachine.provide(sessionImplementations(() => ({ spec, hooks }), runtime))

/**
 * The session logic a root spawns for every bead: the lifecycle machine with
 * its effects, started fresh from its input, or restored from `input.snapshot`
 * when it is given one (`spawnChild` takes no snapshot of its own).
 */
export const sessionChildLogic = (lookup: SessionLookup, runtime: EffectRunner<SessionServices>) =>
  restoringLogic(agentSessionMachine.provide(sessionImplementations(lookup, runtime)))

/** A machine whose initial snapshot is restored from `input.snapshot` when there is one. */
export const restoringLogic = <M extends AnyStateMachine>(machine: M): M => {
  const logic = Object.create(machine) as M
  logic.getInitialSnapshot = ((scope: Parameters<M["getInitialSnapshot"]>[0], input: { snapshot?: unknown } | undefined) =>
    input?.snapshot === undefined || input.snapshot === null
      ? machine.getInitialSnapshot(scope, input as never)
      : machine.restoreSnapshot(input.snapshot as never, scope)) as M["getInitialSnapshot"]
  return logic
}

export type { SessionView }
