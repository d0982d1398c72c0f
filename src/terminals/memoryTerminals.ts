import { appendFileSync, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { Context, Effect, Layer } from "effect"
import { type CreateTerminal, type TerminalInfo, TerminalError, type TerminalErrorReason, Terminals } from "./Terminals.js"
import { keysProblem } from "./keyNames.js"
import { controlCharacterProblem } from "./typedText.js"

type TerminalsService = Context.Tag.Service<Terminals>

/** One `sendText` call as the fake received it. */
export interface SentText {
  readonly text: string
  readonly enter: boolean
  /** Named keys pressed with `sendKeys`. */
  readonly keys?: ReadonlyArray<string>
}

/** Hooks a test uses to act where a real program (or the operating system) would have. */
export interface MemoryTerminalsControl {
  /** Replaces the visible screen of `name`. */
  readonly setScreen: (name: string, lines: ReadonlyArray<string>) => void
  /** The program printed `text`: appended to the in-memory transcript and to the session's transcript file. */
  readonly appendTranscript: (name: string, text: string) => void
  /** The program exited with `code`: the pane stays, dead, as with tmux's `remain-on-exit`. */
  readonly exit: (name: string, code: number) => void
  /** Every `sendText` the session received while its program was alive, in order. */
  readonly sent: (name: string) => ReadonlyArray<SentText>
  /** The in-memory transcript of `name`. */
  readonly transcript: (name: string) => string
  /** The spec the session was created with (its env, command, cwd, ...). */
  readonly spec: (name: string) => CreateTerminal
  /** The program started a child process; returns its fake pid. `kill` of the session kills it. */
  readonly startChild: (name: string) => number
  /** Whether a fake pid (a pane's or a child's) is still running. */
  readonly isAlive: (pid: number) => boolean
}

export interface MemoryTerminals {
  readonly service: TerminalsService
  readonly control: MemoryTerminalsControl
  readonly layer: Layer.Layer<Terminals>
}

interface FakeSession {
  readonly spec: CreateTerminal
  readonly panePid: number
  readonly children: Set<number>
  screen: Array<string>
  transcript: string
  dead: boolean
  deadStatus: number | null
  sent: Array<SentText>
}

const dropTrailingEmpty = (lines: ReadonlyArray<string>): Array<string> => {
  let end = lines.length
  while (end > 0 && lines[end - 1]!.trim() === "") end--
  return lines.slice(0, end)
}

/**
 * An in-memory `Terminals` with the same observable semantics as the tmux one
 * (exact names, duplicate create fails, killing a missing session succeeds,
 * a dead pane stays until killed), scripted through `control`.
 */
export const makeMemoryTerminals = (): MemoryTerminals => {
  const sessions = new Map<string, FakeSession>()
  const alive = new Set<number>()
  let nextPid = 100_000

  const error = (operation: string, session: string, reason: TerminalErrorReason, detail: string) =>
    new TerminalError({ operation, session, reason, detail: `${operation}: ${detail}` })

  const noSession = (operation: string, name: string) =>
    Effect.fail(error(operation, name, "not-found", `no session named ${name} (memory terminals)`))

  const infoOf = (name: string, s: FakeSession): TerminalInfo => ({
    name,
    panePid: s.dead ? null : s.panePid,
    dead: s.dead,
    deadStatus: s.dead ? s.deadStatus : null
  })

  const create = (spec: CreateTerminal): Effect.Effect<TerminalInfo, TerminalError> =>
    Effect.suspend(() => {
      const name = spec.name
      if (name === "" || /[.:]/.test(name)) {
        return Effect.fail(error("create", name, "invalid-input", `invalid session name ${JSON.stringify(name)}`))
      }
      if (spec.command.length === 0) return Effect.fail(error("create", name, "invalid-input", "the command is empty"))
      if (sessions.has(name)) return Effect.fail(error("create", name, "exists", `session ${name} already exists (memory terminals)`))
      if (spec.transcriptPath !== "") {
        try {
          // Like `pipe-pane 'cat >> file'`: the file exists from the start.
          mkdirSync(dirname(spec.transcriptPath), { recursive: true })
          appendFileSync(spec.transcriptPath, "")
        } catch (e) {
          return Effect.fail(
            error("create", name, "io", `cannot open transcript ${spec.transcriptPath}: ${e instanceof Error ? e.message : String(e)}`)
          )
        }
      }
      const panePid = nextPid++
      alive.add(panePid)
      const session: FakeSession = {
        spec,
        panePid,
        children: new Set(),
        screen: [],
        transcript: "",
        dead: false,
        deadStatus: null,
        sent: []
      }
      sessions.set(name, session)
      return Effect.succeed(infoOf(name, session))
    })

  const exists = (name: string) => Effect.sync(() => sessions.has(name))

  const info = (name: string) =>
    Effect.sync(() => {
      const s = sessions.get(name)
      return s === undefined ? null : infoOf(name, s)
    })

  const capture = (name: string, _history = 0): Effect.Effect<ReadonlyArray<string>, TerminalError> =>
    Effect.suspend(() => {
      const s = sessions.get(name)
      // The fake keeps no scrollback, so the screen is all there is to show.
      return s === undefined ? noSession("capture", name) : Effect.succeed(dropTrailingEmpty(s.screen))
    })

  const sendText = (name: string, text: string, enter: boolean): Effect.Effect<void, TerminalError> =>
    Effect.suspend(() => {
      const s = sessions.get(name)
      const refused = controlCharacterProblem(text)
      if (refused !== null) return Effect.fail(error("sendText", name, "invalid-input", refused))
      if (s === undefined) return noSession("sendText", name)
      // tmux accepts keys for a dead pane and drops them: so does the fake.
      if (!s.dead) s.sent.push({ text, enter })
      return Effect.void
    })

  const sendKeys = (name: string, keys: ReadonlyArray<string>): Effect.Effect<void, TerminalError> =>
    Effect.suspend(() => {
      const s = sessions.get(name)
      const refused = keysProblem(keys)
      if (refused !== null) return Effect.fail(error("sendKeys", name, "invalid-input", refused))
      if (s === undefined) return noSession("sendKeys", name)
      if (!s.dead) s.sent.push({ text: "", enter: false, keys: [...keys] })
      return Effect.void
    })

  const kill = (name: string) =>
    Effect.sync(() => {
      const s = sessions.get(name)
      if (s === undefined) return
      alive.delete(s.panePid)
      for (const child of s.children) alive.delete(child)
      sessions.delete(name)
    })

  const list = Effect.sync(() => [...sessions.keys()])

  const panes = Effect.sync(() =>
    [...sessions.entries()].map(([session, s]) => ({ session, dead: s.dead, deadStatus: s.deadStatus }))
  )
  const service: TerminalsService = { socket: "memory", socketProblem: Effect.succeed(null), create, exists, info, capture, sendText, sendKeys, kill, panes, list }

  const must = (hook: string, name: string): FakeSession => {
    const s = sessions.get(name)
    if (s === undefined) throw new Error(`memory terminals ${hook}: no session named ${name}`)
    return s
  }

  const control: MemoryTerminalsControl = {
    setScreen: (name, lines) => {
      must("setScreen", name).screen = [...lines]
    },
    appendTranscript: (name, text) => {
      const s = must("appendTranscript", name)
      s.transcript += text
      if (s.spec.transcriptPath !== "") appendFileSync(s.spec.transcriptPath, text)
    },
    exit: (name, code) => {
      const s = must("exit", name)
      if (s.dead) throw new Error(`memory terminals exit: the program in ${name} already exited`)
      s.dead = true
      s.deadStatus = code
      alive.delete(s.panePid)
    },
    sent: (name) => [...must("sent", name).sent],
    transcript: (name) => must("transcript", name).transcript,
    spec: (name) => must("spec", name).spec,
    startChild: (name) => {
      const s = must("startChild", name)
      const pid = nextPid++
      s.children.add(pid)
      alive.add(pid)
      return pid
    },
    isAlive: (pid) => alive.has(pid)
  }

  return { service, control, layer: Layer.succeed(Terminals, service) }
}

/** A layer over a memory fake; pass the fake to keep its `control`. */
export const memoryTerminalsLayer = (fake: MemoryTerminals = makeMemoryTerminals()): Layer.Layer<Terminals> => fake.layer
