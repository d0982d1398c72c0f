import * as fs from "node:fs"
import { Effect } from "effect"
import { RecordStore } from "../records/RecordStore.js"
import { finalizeLostRun, observeRuns } from "../sessions/reconcile.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import { supervisorAlive } from "../sessions/supervisorLiveness.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { localDate, memoryLine } from "../records/buildRecords.js"
import { CliError, onRuntime, type CliEnvironment } from "./environment.js"
import { psTable, showText } from "./format.js"

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))
const warn = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

const checkBead = (bead: string) =>
  BEAD_ID.test(bead) ? Effect.void : Effect.fail(new CliError({ message: `invalid bead id "${bead}": it must match ${BEAD_ID.source}` }))

/**
 * `warden signal`: the agent's own report. Bead and attempt come from the
 * arguments or from `WARDEN_BEAD` / `WARDEN_ATTEMPT`; the line is appended to
 * the bead's signal log, where the supervisor's watch sees it at once.
 */
export const signalCommand = (
  env: CliEnvironment,
  input: { bead: string | undefined; status: string; summary: string | undefined; attempt: string | undefined }
) =>
  Effect.gen(function* () {
    const bead = input.bead ?? process.env.WARDEN_BEAD
    if (bead === undefined || bead === "") {
      return yield* new CliError({ message: "which bead? give it as an argument or set WARDEN_BEAD (agents have it set)" })
    }
    yield* checkBead(bead)
    const attemptId = input.attempt ?? process.env.WARDEN_ATTEMPT ?? null
    const line = {
      bead,
      attempt_id: attemptId,
      status: input.status,
      summary: input.summary ?? null,
      at: Date.now(),
      pid: process.pid
    }
    fs.mkdirSync(env.paths.watch, { recursive: true })
    // One write of a short line with O_APPEND: concurrent signals never interleave.
    fs.appendFileSync(env.paths.signalsFile(bead), `${JSON.stringify(line)}\n`)
    const run = yield* onRuntime(env, Effect.flatMap(RecordStore, (s) => s.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
    if (attemptId === null) yield* warn(`warden signal: no attempt id (WARDEN_ATTEMPT); the supervisor will ignore this signal`)
    else if (run === null || run.status !== "running") yield* warn(`warden signal: ${bead} has no running session; the signal is kept but will be ignored`)
    else if (run.attempt_id !== attemptId) yield* warn(`warden signal: attempt ${attemptId} is not the current attempt ${run.attempt_id}; it will be ignored`)
  })

/** `warden send <bead> TEXT`: types into the agent's terminal, to answer what it asks. */
export const sendCommand = (env: CliEnvironment, bead: string, text: string, enter: boolean) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    const name = sessionNameFor(bead)
    const terminals = yield* onRuntime(env, Terminals)
    const exists = yield* onRuntime(env, terminals.exists(name)).pipe(Effect.orElseSucceed(() => false))
    if (!exists) return yield* new CliError({ message: `no tmux session ${name} on ${terminals.socket}: ${bead} is not running` })
    yield* onRuntime(env, terminals.sendText(name, text, enter)).pipe(
      Effect.mapError((error) => new CliError({ message: `could not send to ${name}: ${error.reason}` }))
    )
    yield* print(`sent to ${name}${enter ? " (with Enter)" : ""}`)
  })

/** `warden ps`: every session, reconciled against its supervisor and tmux. */
export const psCommand = (env: CliEnvironment, json: boolean) =>
  Effect.gen(function* () {
    const observed = yield* onRuntime(env, observeRuns(env.paths)).pipe(
      Effect.mapError((error) => new CliError({ message: `could not reconcile ${error.file}: ${error.reason}` }))
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
export const cancelCommand = (env: CliEnvironment, bead: string) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    const store = yield* onRuntime(env, RecordStore)
    const run = yield* onRuntime(env, store.readRun(bead)).pipe(Effect.orElseSucceed(() => null))
    if (run === null || run.status !== "running") {
      return yield* new CliError({ message: `${bead} is not running${run === null ? "" : ` (it ended ${run.outcome ?? run.status})`}` })
    }
    if (supervisorAlive(run.supervisor)) {
      process.kill(run.supervisor.pid, "SIGINT")
      yield* print(`asked the supervisor (pid ${run.supervisor.pid}) to cancel ${bead}`)
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
    yield* print(`cancelled ${bead}: killed ${run.session_name} and finalized its records`)
  })
