import * as fs from "node:fs"
import { Effect } from "effect"
import { RecordStore } from "../records/RecordStore.js"
import { machineNamed, machineNames } from "../viz/machineCatalog.js"
import { renderMachine, type VizFormat } from "../viz/render.js"
import { attemptDecisions, marksAt, parseHistory, replaySteps, stepCaption } from "../viz/replay.js"
import { sessionSystemId } from "../../machines/supervisor.machine.js"
import { CliError, checkBead, onRuntime, type CliEnvironment } from "./environment.js"
import { closest } from "./helpText.js"

export interface VizOptions {
  readonly machine: string
  readonly format: VizFormat
  readonly session: string | undefined
  readonly at: number | undefined
}

/** The machine a bead's history is the history of: the session actor's. */
const SESSION_MACHINE = "agentSession"

const usage = (message: string) => new CliError({ message, exitCode: 2 })

/**
 * `warden viz <machine>`: the machine drawn from its own definition; with
 * `--session B`, the states B's attempts passed through and the one it is in
 * marked, from `state/history/B.jsonl` (files only: no daemon needed); with
 * `--at N`, step N of that history, its event and the evidence of its decisions.
 */
export const vizCommand = (options: VizOptions, env: CliEnvironment | null) =>
  Effect.gen(function* () {
    const machine = machineNamed(options.machine)
    if (machine === null) {
      const guess = closest(options.machine, machineNames)
      return yield* usage(`unknown machine "${options.machine}"${guess === null ? "" : ` (did you mean ${guess}?)`}; machines: ${machineNames.join(", ")}`)
    }
    if (options.at !== undefined && options.session === undefined) return yield* usage("--at N replays a session's history: give --session <bead> too")
    if (options.session === undefined || env === null) {
      return yield* print(yield* render(() => renderMachine(options.machine, machine, options.format)))
    }
    const bead = options.session
    yield* checkBead(bead)
    if (options.machine !== SESSION_MACHINE) {
      return yield* usage(`--session shows a bead's session, drawn on ${SESSION_MACHINE}: warden viz ${SESSION_MACHINE} --session ${bead}`)
    }
    const file = env.paths.historyFile(bead)
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (error) =>
        new CliError({
          message:
            (error as NodeJS.ErrnoException).code === "ENOENT"
              ? `no machine history for bead ${bead}: ${file} does not exist (each session run by the daemon or by dispatch --wait writes one; runs from before this version have none)`
              : `cannot read ${file}: ${(error as Error).message}`
        })
    })
    const events = parseHistory(text, file)
    if (!events.ok) return yield* new CliError({ message: events.problem })
    // The decisions and their evidence live in the run record, not in the history: without one, steps carry none.
    const run = yield* onRuntime(env, Effect.flatMap(RecordStore, (store) => store.readRun(bead))).pipe(
      Effect.mapError((error) => new CliError({ message: `cannot read the run record ${error.file}: ${error.detail}` }))
    )
    const replay = replaySteps(machine, events.value, sessionSystemId(bead), run === null ? new Map() : attemptDecisions(run))
    if (!replay.ok) return yield* new CliError({ message: `${file}: ${replay.problem}` })
    const steps = replay.value
    if (steps.length === 0) return yield* new CliError({ message: `${file} holds no state of bead ${bead}'s session` })
    if (options.at !== undefined && (options.at < 1 || options.at > steps.length)) {
      return yield* usage(`--at ${options.at}: bead ${bead}'s history has steps 1 to ${steps.length}`)
    }
    const n = options.at ?? null
    const marks = marksAt(steps, n)
    const step = steps[(n ?? steps.length) - 1]!
    const caption = n === null ? [`session ${bead}: ${steps.length} steps, now ${step.states[step.states.length - 1]}`] : stepCaption(step, steps.length)
    const extra = {
      session: { bead, history_file: file, run_record: run === null ? null : env.paths.runFile(bead), current: [...marks.current], visited: [...marks.visited] },
      ...(n === null ? {} : { step }),
      steps
    }
    return yield* print(yield* render(() => renderMachine(options.machine, machine, options.format, marks, caption, extra)))
  })

const render = (draw: () => Promise<string>) =>
  Effect.tryPromise({ try: draw, catch: (error) => new CliError({ message: `could not lay out the statechart: ${(error as Error).message}` }) })

const print = (text: string) => Effect.sync(() => void process.stdout.write(text))
