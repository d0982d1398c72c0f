import * as fs from "node:fs"
import { MachineEventSource } from "../daemon/machineEvents.js"
import { MachineHistory } from "../daemon/machineHistory.js"
import { Effect, Exit } from "effect"
import { SessionRunner } from "../sessions/runSession.js"
import { isFinalState } from "../../machines/agentSession.types.js"
import { runPreflight } from "../sessions/preflight.js"
import { launchScope } from "../sessions/launch.js"
import { runVerification } from "../sessions/verify.js"
import { RecordStore } from "../records/RecordStore.js"
import { verificationRecord } from "../records/buildRecords.js"
import { runIsLive } from "../sessions/reconcile.js"
import { buildSpec, dispatcherEnv, type DispatchRefused, type DispatchRequest } from "../sessions/buildSpec.js"
import { CliError, checkBead, cliFor, onRuntime, type CliEnvironment } from "./environment.js"
import { closest } from "./helpText.js"
import { openLogger } from "./logger.js"
import { Progress } from "./progress.js"
import { table } from "./format.js"
import { callDaemon } from "./daemonClient.js"
import { runningDaemon, type DaemonInfo } from "../daemon/runningDaemon.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import * as path from "node:path"

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

/** A request that cannot become a spec is the command line's error, with the same message and exit code. */
const refusedAsCliError = (refused: DispatchRefused) => new CliError({ message: refused.message, exitCode: refused.exitCode })

/**
 * `warden dispatch --wait`: runs the session in this process, state by state,
 * until it ends. Interrupting it (Ctrl-C, SIGTERM) cancels the session
 * cleanly: the agent is stopped and the records say `cancelled`.
 */
export const dispatchCommand = (env: CliEnvironment, request: DispatchRequest, options: { wait: boolean; json: boolean; priority: number }) =>
  Effect.gen(function* () {
    // What the command line itself gets wrong is said here, exit 2, before a daemon is asked anything.
    yield* checkBead(request.bead)
    if (!Number.isInteger(options.priority) || options.priority < 0 || options.priority > 4) {
      return yield* new CliError({ message: `--priority ${options.priority}: 0 (first) to 4`, exitCode: 2 })
    }
    if (!(request.agent in env.config.profiles)) {
      const guess = closest(request.agent, Object.keys(env.config.profiles))
      return yield* new CliError({
        message: `unknown agent profile "${request.agent}"${guess === null ? "" : ` (did you mean ${guess}?)`}; configured: ${Object.keys(env.config.profiles).sort().join(", ")}`,
        exitCode: 2
      })
    }
    const daemon = runningDaemon(env.paths)
    if (daemon !== null) return yield* dispatchToDaemon(env, daemon, request, options)
    if (!options.wait) {
      return yield* new CliError({
        message:
          "no warden daemon runs for this workspace, so dispatch cannot queue the bead and return; " +
          "start one with `warden daemon`, or run the session in the foreground with --wait"
      })
    }
    const spec = yield* buildSpec(env, request).pipe(Effect.mapError(refusedAsCliError))
    const logger = openLogger(env.paths, { bead: spec.bead }, env.config.retention)
    const progress = new Progress(spec.bead, options.json ? process.stderr : process.stdout, cliFor(env))
    const machineEvents = new MachineEventSource()
    const history = new MachineHistory(env.paths, (message, detail) => logger.info(detail ?? {}, message))
    const runner = new SessionRunner(spec, env.runtime, {
      onState: (view, entry) => {
        progress.state(view, entry)
        logger.info({ state: view.state, attempt: entry.attempt, attemptId: view.context.attemptId }, "state")
      },
      onIgnored: (reason) => progress.line(`  ignored a signal: ${reason}`),
      log: (message, detail) => logger.info(detail ?? {}, message),
      // Its machine history, as the daemon keeps it: `warden viz --session` replays a foreground session too.
      inspect: (event) => {
        const machineEvent = machineEvents.take(event)
        if (machineEvent !== null) history.append(machineEvent)
      }
    })
    progress.start()
    runner.start()
    const outcome = yield* Effect.promise(() => runner.finished).pipe(
      Effect.onInterrupt(() =>
        Effect.promise(async () => {
          progress.line(`${spec.bead}: interrupted; cancelling the session`)
          runner.cancel("the foreground dispatch was interrupted")
          await runner.finished.catch(() => undefined)
          progress.stop()
        })
      ),
      Effect.ensuring(Effect.sync(() => progress.stop()))
    )
    const { run, result } = runner.records()
    if (options.json) yield* print(JSON.stringify(result, null, 2))
    else {
      yield* print(`${spec.bead}: ${outcome} - ${result.reason}`)
      yield* print(`records: ${env.paths.runFile(spec.bead)} ${env.paths.resultFile(spec.bead)}`)
    }
    if (run.status !== "done") return yield* new CliError({ message: `${spec.bead} ended ${outcome}`, exitCode: 1 })
  })

/**
 * Dispatch through the daemon: it queues the bead and answers at once; with
 * `--wait` the CLI follows the session's records to its end, state by state.
 */
const dispatchToDaemon = (
  env: CliEnvironment,
  daemon: DaemonInfo,
  request: DispatchRequest,
  options: { wait: boolean; json: boolean; priority: number }
) =>
  Effect.gen(function* () {
    let prompt = request.prompt
    if (request.promptFile !== undefined) {
      try {
        prompt = fs.readFileSync(request.promptFile, "utf8")
      } catch (error) {
        return yield* new CliError({ message: `cannot read --prompt-file ${request.promptFile}: ${(error as Error).message}` })
      }
    }
    const body = {
      bead: request.bead,
      repo: path.resolve(request.repo),
      agent: request.agent,
      priority: options.priority,
      ...(request.template === undefined ? {} : { template: request.template }),
      ...(prompt === undefined ? {} : { prompt }),
      ...(request.title === undefined ? {} : { title: request.title }),
      ...(request.acceptance === undefined ? {} : { acceptance: request.acceptance }),
      ...(request.command === undefined ? {} : { command: request.command }),
      ...(request.overrides.timeoutMs === undefined ? {} : { timeoutSeconds: Math.ceil(request.overrides.timeoutMs / 1000) }),
      ...(request.overrides.stallMs === undefined ? {} : { stallSeconds: Math.ceil(request.overrides.stallMs / 1000) }),
      ...(request.overrides.maxAttempts === undefined ? {} : { maxRetries: request.overrides.maxAttempts })
    }
    const queued = yield* callDaemon(env.paths, daemon, "POST", "/v1/dispatch", body)
    if (!options.wait) {
      const draining = (queued as { draining?: unknown }).draining === true
      yield* print(
        options.json
          ? JSON.stringify(queued, null, 2)
          : `${request.bead}: queued with the daemon (pid ${daemon.pid}), priority ${options.priority}` +
              (draining ? "; the daemon is draining: nothing starts until `warden drain --off`" : "")
      )
      return
    }
    const progress = new Progress(request.bead, options.json ? process.stderr : process.stdout, cliFor(env))
    progress.start()
    // Ctrl-C here stops following, not the bead (the daemon runs it): say so, and how to cancel it.
    yield* Effect.addFinalizer((exit) =>
      Effect.sync(() => {
        if (Exit.isInterrupted(exit)) {
          progress.stop()
          process.stderr.write(
            `\nwarden: stopped following ${request.bead}; it goes on under the daemon (pid ${daemon.pid}). ` +
              `Follow it again with \`warden logs ${request.bead} -f\`, or cancel it with \`warden cancel ${request.bead}\`.\n`
          )
        }
      })
    )
    let shown = 0
    let run: RunRecord | null = null
    let result: ResultRecord | null = null
    for (;;) {
      const shownNow = yield* callDaemon(env.paths, daemon, "GET", `/v1/sessions/${encodeURIComponent(request.bead)}`).pipe(
        Effect.map((json) => json as unknown as { run: RunRecord; result: ResultRecord | null }),
        Effect.orElseSucceed(() => null)
      )
      if (shownNow !== null) {
        run = shownNow.run
        result = shownNow.result
        for (; shown < run.state_history.length; shown++) {
          const entry = run.state_history[shown]!
          progress.line(`${entry.at.slice(11, 23)}  ${request.bead}  #${entry.attempt}  ${entry.state}`)
        }
        if (isFinalState(run.lifecycle_state)) break
      }
      yield* Effect.sleep(250)
    }
    progress.stop()
    if (options.json) yield* print(JSON.stringify(result, null, 2))
    else yield* print(`${request.bead}: ${run?.outcome ?? run?.status} - ${result?.reason ?? ""}`)
    if (run?.status !== "done") return yield* new CliError({ message: `${request.bead} ended ${run?.outcome ?? run?.status}`, exitCode: 1 })
  }).pipe(Effect.scoped)

/** `warden preflight`: every check, each named, exit 1 when one fails. */
export const preflightCommand = (env: CliEnvironment, request: DispatchRequest, json: boolean) =>
  Effect.gen(function* () {
    const spec = yield* buildSpec(
      env,
      {
        ...request,
        prompt: request.prompt ?? (request.template === undefined && request.promptFile === undefined ? "(preflight)" : request.prompt)
      },
      { forPreflight: true }
    ).pipe(Effect.mapError(refusedAsCliError))
    const checks = yield* onRuntime(env, runPreflight(spec))
    // What a TUI would ask is a warning: the attempt runs and shows the dialog as waiting-input.
    const ok = checks.every((check) => check.ok || check.advisory === true)
    if (json) yield* print(JSON.stringify({ ok, checks }, null, 2))
    else
      yield* print(
        table([["CHECK", "RESULT", "DETAIL"], ...checks.map((c) => [c.name, c.ok ? "ok" : c.advisory ? "WARNING" : "FAILED", c.detail])])
      )
    if (!ok) {
      return yield* new CliError({
        message: `preflight failed: ${checks.filter((c) => !c.ok && c.advisory !== true).map((c) => c.name).join(", ")}`,
        exitCode: 1
      })
    }
  })

/**
 * `warden verify <bead>`: runs the verification on the bead's repo against the
 * commit recorded at dispatch, prints it, and keeps it in the records. A run
 * that ended `unverified` (its supervisor died) becomes `done` when it passes.
 */
export const verifyCommand = (env: CliEnvironment, bead: string, json: boolean) =>
  Effect.gen(function* () {
    const store = yield* onRuntime(env, RecordStore)
    const run = yield* onRuntime(env, store.readRun(bead).pipe(Effect.orElseSucceed(() => null)))
    if (run === null) return yield* new CliError({ message: `no run record for bead "${bead}" in ${env.paths.runs}` })
    if (!fs.existsSync(run.repo)) return yield* new CliError({ message: `the bead's repo ${run.repo} does not exist` })
    // The attempt's own work only: commits from its launch on, paths that changed since then.
    const scope = run.attempt_id === null ? {} : launchScope(env.paths.launchRecordFile(bead, run.attempt_id))
    const output = yield* onRuntime(env, runVerification(env.config, run.repo, run.base_commit, dispatcherEnv(), scope))
    const verification = verificationRecord(output)
    const result = yield* onRuntime(env, store.readResult(bead).pipe(Effect.orElseSucceed(() => null)))
    const live = runIsLive(run)
    const promote = !live && run.failure_reason === "unverified" && output.overall === "pass"
    const now = new Date().toISOString()
    // Promoted, the run is done in every field an operator reads: status, outcome and the lifecycle state (ps's STATE).
    const updates = {
      verification,
      updated_at: now,
      ...(promote
        ? {
            status: "done" as const,
            outcome: "done" as const,
            failure_reason: null,
            lifecycle_state: "done",
            state_history: [...run.state_history, { state: "done", at: now, attempt: run.attempt }]
          }
        : {})
    }
    // A live run's records belong to its supervisor: verify only reports on it.
    if (!live && result !== null) {
      yield* onRuntime(
        env,
        store.write(
          { ...run, ...updates },
          { ...result, ...updates, ...(promote ? { reason: "done: verified by `warden verify` after the supervisor was lost" } : {}) }
        )
      ).pipe(Effect.mapError((error) => new CliError({ message: `could not write the records: ${error.message}` })))
    }
    if (json) yield* print(JSON.stringify(verification, null, 2))
    else {
      yield* print(table([["CHECK", "STATUS", "DETAIL"], ...verification.checks.map((c) => [c.name, c.status, c.detail])]))
      yield* print(`overall: ${verification.overall}`)
      if (verification.diff_stat !== "") yield* print(verification.diff_stat)
    }
    if (output.overall !== "pass") return yield* new CliError({ message: `verification of ${bead} failed`, exitCode: 1 })
  })
