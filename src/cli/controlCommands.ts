import { Effect } from "effect"
import { RecordStore } from "../records/RecordStore.js"
import { finalizeLostRun, observeRuns, runIsLive } from "../sessions/reconcile.js"
import { supervisorAlive } from "../sessions/supervisorLiveness.js"
import { type TerminalError, Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { localDate, memoryLine } from "../records/buildRecords.js"
import { CliError, checkBead, onRuntime, type CliEnvironment } from "./environment.js"
import { psTable, showText } from "./format.js"
import { callDaemon } from "./daemonClient.js"
import { runningDaemon } from "../daemon/runningDaemon.js"
import { checkOperatorInput, recordInput } from "../sessions/operatorInput.js"

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))



/** Refuses (exit 2) an agents' socket that someone else could have planted, before any tmux client touches it. */
export const refuseUnsafeSocket = (env: CliEnvironment) =>
  Effect.flatMap(onRuntime(env, Effect.flatMap(Terminals, (t) => t.socketProblem)), (problem) =>
    problem === null ? Effect.void : Effect.fail(new CliError({ message: `refusing to use the agents' tmux socket: ${problem}`, exitCode: 2 }))
  )

/** `warden send <bead> TEXT` (or `--key NAME ...`): types into the agent's terminal, to answer what it asks. */
export const sendCommand = (env: CliEnvironment, bead: string, given: string | undefined, keys: ReadonlyArray<string>, enter: boolean) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    // An empty answer is never sent by accident: Enter alone is `--key Enter`.
    if ((given === undefined || given === "") && keys.length === 0) {
      return yield* new CliError({ message: "nothing to send: give TEXT, or --key NAME (--key Enter presses Enter alone)", exitCode: 2 })
    }
    const checked = checkOperatorInput(given, keys)
    if (!checked.ok) return yield* new CliError({ message: `nothing sent: ${checked.problem}`, exitCode: 2 })
    const text = checked.text
    yield* refuseUnsafeSocket(env)
    const name = sessionNameFor(bead)
    const terminals = yield* onRuntime(env, Terminals)
    const exists = yield* onRuntime(env, terminals.exists(name)).pipe(Effect.orElseSucceed(() => false))
    if (!exists) {
      const record = yield* onRuntime(env, Effect.flatMap(RecordStore, (s) => s.readRun(bead))).pipe(Effect.orElseSucceed(() => null))
      return yield* new CliError({
        message:
          record === null
            ? `no bead ${bead} in the workspace ${env.paths.root}`
            : `${bead} is not running (${runIsLive(record) ? "its tmux session is gone" : `it ended ${record.outcome ?? record.status}`}): nothing to send to`
      })
    }
    const failed = (error: TerminalError) => new CliError({ message: `could not send to ${name}: ${error.message}` })
    if (text !== undefined && text !== "") yield* onRuntime(env, terminals.sendText(name, text, enter)).pipe(Effect.mapError(failed))
    else if (enter) yield* onRuntime(env, terminals.sendText(name, "", true)).pipe(Effect.mapError(failed))
    if (keys.length > 0) yield* onRuntime(env, terminals.sendKeys(name, keys)).pipe(Effect.mapError(failed))
    // Tell the supervisor the agent was answered: a wait the agent announced ends with it.
    const run = yield* onRuntime(env, Effect.flatMap(RecordStore, (s) => s.readRun(bead))).pipe(Effect.orElseSucceed(() => null))
    if (run !== null && run.status === "running" && run.attempt_id !== null) {
      recordInput(env.paths, bead, run.attempt_id, { text, keys, enter, via: "cli" })
    }
    // The text is not echoed: it may be a password typed into a prompt.
    const chars = text === undefined ? 0 : [...text].length
    yield* print(`sent to ${name}${text ? `: ${chars} character${chars === 1 ? "" : "s"}` : ""}${keys.length > 0 ? ` keys ${keys.join(" ")}` : ""}${enter ? " (with Enter)" : ""}`)
  })

/** `warden ps`: every session, reconciled against its supervisor and tmux. */
export const psCommand = (env: CliEnvironment, json: boolean) =>
  Effect.gen(function* () {
    const observed = yield* onRuntime(env, observeRuns(env.paths)).pipe(
      Effect.mapError((error) => new CliError({ message: `could not reconcile ${error.file}: ${error.message}` }))
    )
    if (json) {
      yield* print(JSON.stringify(observed.map((o) => ({ ...o.run, liveness: o.liveness, reconciled: o.reconciled })), null, 2))
    } else yield* print(psTable(observed))
  })

/** `warden show <bead>`: the states with timestamps and why it ended as it did. */
export const showCommand = (env: CliEnvironment, bead: string, json: boolean) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    // Reconcile first so a dead supervisor's record is not shown as running.
    yield* onRuntime(env, observeRuns(env.paths)).pipe(Effect.ignore)
    const store = yield* onRuntime(env, RecordStore)
    const run = yield* onRuntime(env, store.readRun(bead)).pipe(Effect.orElseSucceed(() => null))
    if (run === null) return yield* new CliError({ message: `no record of bead "${bead}" in ${env.paths.runs}` })
    const result = yield* onRuntime(env, store.readResult(bead)).pipe(Effect.orElseSucceed(() => null))
    if (json) yield* print(JSON.stringify({ run, result }, null, 2))
    else yield* print(showText(run, result))
  })

/**
 * `warden cancel <bead>`: asks the bead's supervisor to cancel (it stops the
 * agent and records `cancelled`); without a live supervisor, stops the agent
 * itself and finalizes the records.
 */
export const cancelCommand = (env: CliEnvironment, bead: string, json = false) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    const store = yield* onRuntime(env, RecordStore)
    const run = yield* onRuntime(env, store.readRun(bead)).pipe(Effect.orElseSucceed(() => null))
    if (run === null) return yield* new CliError({ message: `no bead ${bead} in the workspace ${env.paths.root}` })
    if (!runIsLive(run)) return yield* new CliError({ message: `${bead} is not running (it ended ${run.outcome ?? run.status})` })
    const daemon = runningDaemon(env.paths)
    if (daemon !== null && run.supervisor.kind === "daemon" && run.supervisor.pid === daemon.pid) {
      const answer = yield* callDaemon(env.paths, daemon, "POST", `/v1/sessions/${encodeURIComponent(bead)}/cancel`, {})
      yield* print(json ? JSON.stringify({ ...answer, via: "daemon", pid: daemon.pid }) : `asked the daemon (pid ${daemon.pid}) to cancel ${bead}`)
      return
    }
    if (supervisorAlive(run.supervisor)) {
      process.kill(run.supervisor.pid, "SIGINT")
      yield* print(json ? JSON.stringify({ bead, cancelled: true, via: "supervisor", pid: run.supervisor.pid }) : `asked the supervisor (pid ${run.supervisor.pid}) to cancel ${bead}`)
      return
    }
    const terminals = yield* onRuntime(env, Terminals)
    yield* onRuntime(env, terminals.kill(run.session_name)).pipe(Effect.ignore)
    const result = yield* onRuntime(env, store.readResult(bead)).pipe(Effect.orElseSucceed(() => null))
    const now = Date.now()
    const lost = finalizeLostRun(env.paths, run, result, now)
    const cancelled = {
      outcome: "cancelled" as const,
      status: "failed" as const,
      failure_reason: "cancelled",
      lifecycle_state: "cancelled"
    }
    const finalRun = { ...lost.run, ...cancelled }
    const finalResult = { ...lost.result, ...cancelled, reason: "cancelled (no supervisor was running; the agent's session was killed)" }
    yield* onRuntime(env, store.write(finalRun, finalResult)).pipe(Effect.orDie)
    yield* onRuntime(env, store.appendMemory(localDate(now), memoryLine(finalRun, finalResult))).pipe(Effect.ignore)
    yield* print(json ? JSON.stringify({ bead, cancelled: true, via: "cli" }) : `cancelled ${bead}: killed ${run.session_name} and finalized its records`)
  })
