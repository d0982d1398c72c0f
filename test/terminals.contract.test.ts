import { execFileSync, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type CreateTerminal, TerminalError, Terminals } from "../src/terminals/Terminals.js"
import { makeMemoryTerminals } from "../src/terminals/memoryTerminals.js"
import { makeTmuxTerminals, tmuxTerminalsLayer } from "../src/terminals/tmuxTerminals.js"
import { keyNames, keyProblem } from "../src/terminals/keyNames.js"

type TerminalsService = Context.Tag.Service<Terminals>

/** Something that would have happened in the terminal, made to happen where the implementation cannot do it itself. */
interface Drive {
  /** The program printed `text` on a line (live: it did so itself). */
  readonly printed: (name: string, text: string) => void
  /** The program printed the value of environment variable `key` (live: it did so itself). */
  readonly printedEnv: (name: string, key: string) => void
  /** The program is `cat` on a terminal: what was typed is echoed, and each line is printed back after Enter. */
  readonly echoesInput: (name: string) => void
  /** The program reads lines without echo and prints each back as `got:LINE` (live: a shell loop does). */
  readonly printsLinesRead: (name: string) => void
  /** The program exited with `code` (live: it did so itself). */
  readonly exited: (name: string, code: number) => void
  /** The program started a child process (live: it wrote the pid to `pidFile`); returns a probe of that child. */
  readonly startedChild: (name: string, pidFile: string) => Promise<{ readonly pid: number; readonly alive: () => boolean }>
  /** Whether the pane's program (by its pid) is still running. */
  readonly paneAlive: (pid: number) => boolean
  /** A service on which nothing was ever created (live: a socket with no server). */
  readonly empty: () => TerminalsService
}

/** Retries `check` until it stops throwing, up to `timeoutMs`. */
const eventually = async <A>(check: () => Promise<A> | A, timeoutMs = 5_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() >= deadline) throw e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Runs `effect`; a TerminalError rejects with an Error that shows its operation, session and message. */
const run = <A>(effect: Effect.Effect<A, TerminalError>): Promise<A> =>
  Effect.runPromise(
    Effect.mapError(effect, (e) => new Error(`TerminalError in ${e.operation} of ${e.session || "-"}: ${e.message}`))
  )
const failure = <A>(effect: Effect.Effect<A, TerminalError>): Promise<TerminalError> => Effect.runPromise(Effect.flip(effect))

/** Whether a real pid is running (a zombie has exited: it is only waiting to be reaped). */
const pidRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return existsSync("/proc/self") ? false : true
  }
}

const contract = (label: string, makeLayer: () => Layer.Layer<Terminals>, drive: Drive) =>
  describe(`Terminals contract: ${label}`, () => {
    let t: TerminalsService
    let dir: string

    beforeAll(async () => {
      t = await Effect.runPromise(Effect.provide(Terminals, makeLayer()))
      dir = mkdtempSync(join(tmpdir(), `warden-terminals-${label}-`))
    })
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true })
    })

    const spec = (name: string, command: ReadonlyArray<string>, extra: Partial<CreateTerminal> = {}): CreateTerminal => ({
      name,
      cwd: dir,
      command,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      transcriptPath: join(dir, "transcripts", `${name}.log`),
      width: 80,
      height: 24,
      ...extra
    })
    const waitsAfter = (shell: string) => ["sh", "-c", `${shell}; sleep 30`]

    it("knows nothing on a terminal set where nothing was created", async () => {
      const e = drive.empty()
      expect(await run(e.list)).toEqual([])
      expect(await run(e.exists("agent-none"))).toBe(false)
      expect(await run(e.info("agent-none"))).toBeNull()
      await run(e.kill("agent-none"))
      const err = await failure(e.capture("agent-none"))
      expect(err).toBeInstanceOf(TerminalError)
      expect(err.operation).toBe("capture")
    })

    it("creates a session that then exists, has info and is listed", async () => {
      const name = "agent-c-1"
      expect(await run(t.exists(name))).toBe(false)
      const created = await run(t.create(spec(name, waitsAfter("true"))))
      expect(created).toMatchObject({ name, dead: false, deadStatus: null })
      expect(created.panePid).toEqual(expect.any(Number))
      expect(drive.paneAlive(created.panePid!)).toBe(true)
      expect(await run(t.exists(name))).toBe(true)
      expect(await run(t.info(name))).toEqual(created)
      expect(await run(t.list)).toContain(name)
      await run(t.kill(name))
      expect(await run(t.exists(name))).toBe(false)
      expect(await run(t.info(name))).toBeNull()
      expect(await run(t.list)).not.toContain(name)
    })

    it("targets sessions exactly, never by prefix", async () => {
      // The longer name first: a prefix lookup of agent-t-1 would find agent-t-10.
      await run(t.create(spec("agent-t-10", waitsAfter("echo ten"))))
      drive.printed("agent-t-10", "ten")
      expect(await run(t.exists("agent-t-1"))).toBe(false)
      expect(await run(t.info("agent-t-1"))).toBeNull()
      await run(t.create(spec("agent-t-1", waitsAfter("echo one"))))
      drive.printed("agent-t-1", "one")
      await eventually(async () => expect(await run(t.capture("agent-t-1"))).toEqual(["one"]))
      await eventually(async () => expect(await run(t.capture("agent-t-10"))).toEqual(["ten"]))

      await run(t.kill("agent-t-1"))
      expect(await run(t.exists("agent-t-1"))).toBe(false)
      expect(await run(t.exists("agent-t-10"))).toBe(true)
      expect((await failure(t.capture("agent-t-1"))).operation).toBe("capture")
      expect(await failure(t.sendText("agent-t-1", "x", false))).toBeInstanceOf(TerminalError)
      // Killing the now-missing shorter name must not touch the longer one.
      await run(t.kill("agent-t-1"))
      expect(await run(t.exists("agent-t-10"))).toBe(true)
      expect(await run(t.capture("agent-t-10"))).toEqual(["ten"])
      expect(await run(t.list)).toContain("agent-t-10")
      expect(await run(t.list)).not.toContain("agent-t-1")
      await run(t.kill("agent-t-10"))
    })

    it("refuses to create a session whose name exists, leaving the first alone", async () => {
      const name = "agent-dup-1"
      const first = await run(t.create(spec(name, waitsAfter("echo first"))))
      drive.printed(name, "first")
      const err = await failure(t.create(spec(name, waitsAfter("echo second"))))
      expect(err).toBeInstanceOf(TerminalError)
      expect(err.operation).toBe("create")
      expect(err.message).toMatch(/exists/)
      expect(await run(t.info(name))).toEqual(first)
      await eventually(async () => expect(await run(t.capture(name))).toEqual(["first"]))
      await run(t.kill(name))
    })

    it("captures what the program printed", async () => {
      const name = "agent-cap-1"
      await run(t.create(spec(name, waitsAfter("echo hello-warden"))))
      drive.printed(name, "hello-warden")
      await eventually(async () => expect(await run(t.capture(name))).toEqual(["hello-warden"]))
      await run(t.kill(name))
    })

    it("types text literally, then Enter only when asked", async () => {
      const name = "agent-send-1"
      await run(t.create(spec(name, ["cat"])))
      const text = "Enter and $HOME literally"
      // "Enter" alone is a tmux key name: typed as a key it would end the line.
      await run(t.sendText(name, "Enter", false))
      await run(t.sendText(name, " and $HOME literally", false))
      drive.echoesInput(name)
      await eventually(async () => expect(await run(t.capture(name))).toEqual([text]))
      await run(t.sendText(name, "", true))
      drive.echoesInput(name)
      await eventually(async () => expect(await run(t.capture(name))).toEqual([text, text]))
      await run(t.kill(name))
    })

    it("presses named keys: a key name is a key, not text", async () => {
      const name = "agent-keys-1"
      await run(t.create(spec(name, ["cat"])))
      await run(t.sendText(name, "abc", false))
      // BSpace deletes the "c"; Enter ends the line, which cat prints back.
      await run(t.sendKeys(name, ["BSpace", "Enter"]))
      drive.echoesInput(name)
      // The terminal erases the echoed "c" by writing a space over it: compare without trailing blanks.
      await eventually(async () => expect((await run(t.capture(name))).map((l) => l.trimEnd())).toEqual(["ab", "ab"]))
      expect(await failure(t.sendKeys("agent-keys-none", ["Enter"]))).toBeInstanceOf(TerminalError)
      await run(t.kill(name))
    })

    it("refuses keys that are not tmux key names (options such as -N, -t), naming the key, and types nothing", async () => {
      const name = "agent-keys-2"
      await run(t.create(spec(name, ["cat"])))
      await run(t.create(spec("agent-keys-other", ["cat"])))
      for (const keys of [["-N", "2000", "x"], ["-t", "agent-keys-other", "P", "Enter"], ["-X", "cancel"], ["-R"], ["Enter", "F13"], ["C-~"], [""]]) {
        const err = await failure(t.sendKeys(name, keys))
        expect(err).toBeInstanceOf(TerminalError)
        expect(err.operation).toBe("sendKeys")
        expect(err.message).toContain(JSON.stringify(keys.find((k) => k === "" || k.startsWith("-") || k === "F13" || k === "C-~")))
      }
      // Valid names still work: single characters (a "-" among them, after "--"), Space, Enter.
      await run(t.sendKeys(name, ["h", "i", "Space", "-", "t", "Enter"]))
      drive.echoesInput(name)
      await eventually(async () => expect(await run(t.capture(name))).toEqual(["hi -t", "hi -t"]))
      drive.echoesInput("agent-keys-other")
      expect(await run(t.capture("agent-keys-other"))).toEqual([])
      await run(t.kill(name))
      await run(t.kill("agent-keys-other"))
    })

    it("refuses control characters in text (ESC, ETX, CR, DEL, C1), naming the character and where it is", async () => {
      const name = "agent-ctl-1"
      await run(t.create(spec(name, ["cat"])))
      const cases: Array<[string, RegExp]> = [
        ["ok\u001b[201~!sh", /U\+001B \(ESC\) at character 3/],
        ["\u0003", /U\+0003 \(ETX\) at character 1/],
        ["line\r", /U\+000D \(CR\) at character 5/],
        ["x\u007f", /U\+007F \(DEL\)/],
        ["x\u009b1m", /U\+009B \(CSI\)/]
      ]
      for (const [text, reason] of cases) {
        const err = await failure(t.sendText(name, text, true))
        expect(err.operation).toBe("sendText")
        expect(err.message).toMatch(reason)
      }
      await run(t.sendText(name, "tab\there", true))
      drive.echoesInput(name)
      await eventually(async () => expect((await run(t.capture(name))).map((l) => l.replace(/\s+/g, " "))).toEqual(["tab here", "tab here"]))
      await run(t.kill(name))
    })

    it("sends multi-line text as lines", async () => {
      const name = "agent-send-2"
      // No echo: the terminal's echo of a paste would interleave with the program's output.
      const readLines = `stty -echo; echo ready; while IFS= read -r l; do printf 'got:%s\\n' "$l"; done`
      await run(t.create(spec(name, ["sh", "-c", readLines])))
      drive.printed(name, "ready")
      await eventually(async () => expect(await run(t.capture(name))).toEqual(["ready"]))
      await run(t.sendText(name, "line one\nline two; C-c Enter", true))
      drive.printsLinesRead(name)
      await eventually(async () =>
        expect(await run(t.capture(name))).toEqual(["ready", "got:line one", "got:line two; C-c Enter"])
      )
      await run(t.kill(name))
    })

    it("gives the program the environment it was created with", async () => {
      const name = "agent-env-1"
      await run(
        t.create(
          spec(name, waitsAfter(`echo "[$WARDEN_BEAD]"`), {
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", WARDEN_BEAD: "bd-env-1" }
          })
        )
      )
      drive.printedEnv(name, "WARDEN_BEAD")
      await eventually(async () => expect(await run(t.capture(name))).toEqual(["[bd-env-1]"]))
      await run(t.kill(name))
    })

    it("keeps the pane of a program that exits at once, with its exit status", async () => {
      const name = "agent-exit-1"
      await run(t.create(spec(name, ["sh", "-c", "exit 3"])))
      drive.exited(name, 3)
      await eventually(async () =>
        expect(await run(t.info(name))).toEqual({ name, panePid: null, dead: true, deadStatus: 3 })
      )
      expect(await run(t.exists(name))).toBe(true)
      expect(await run(t.list)).toContain(name)
      expect(Array.isArray(await run(t.capture(name)))).toBe(true)
      await run(t.kill(name))
      expect(await run(t.exists(name))).toBe(false)
      expect(await run(t.info(name))).toBeNull()
    })

    it("still captures the screen of a program that has exited", async () => {
      const name = "agent-exit-2"
      // tmux 3.3a may drop output still in flight in the pty when the program exits at
      // that very moment, so this program lingers briefly after printing.
      await run(t.create(spec(name, ["sh", "-c", "echo bye-warden; sleep 0.3; exit 3"])))
      drive.printed(name, "bye-warden")
      drive.exited(name, 3)
      await eventually(async () => expect(await run(t.info(name))).toMatchObject({ dead: true, deadStatus: 3 }))
      // tmux scrolls the first line away to print "Pane is dead": it must still be there.
      expect((await run(t.capture(name)))[0]).toBe("bye-warden")
      // One call lists every pane with its state.
      expect((await run(t.panes)).find((p) => p.session === name)).toEqual({ session: name, dead: true, deadStatus: 3 })
      await run(t.kill(name))
      expect((await run(t.panes)).some((p) => p.session === name)).toBe(false)
    })

    it("kill removes the session and the program's children", async () => {
      const name = "agent-kill-1"
      const pidFile = join(dir, `${name}.pid`)
      // The program and its child ignore SIGHUP, so closing the terminal alone would not end them.
      const program = `trap '' HUP; sleep 1000 & echo $! > ${shq(pidFile)}; wait`
      const created = await run(t.create(spec(name, ["sh", "-c", program])))
      const child = await drive.startedChild(name, pidFile)
      expect(child.alive()).toBe(true)
      expect(drive.paneAlive(created.panePid!)).toBe(true)
      await run(t.kill(name))
      expect(await run(t.exists(name))).toBe(false)
      expect(await run(t.list)).not.toContain(name)
      await eventually(() => expect(child.alive()).toBe(false))
      await eventually(() => expect(drive.paneAlive(created.panePid!)).toBe(false))
    })

    it("appends what the program prints to the transcript file", async () => {
      const name = "agent-tr-1"
      const transcriptPath = join(dir, "deeper", "not-yet", `${name}.log`)
      await run(t.create(spec(name, waitsAfter("echo transcript-line-1"), { transcriptPath })))
      drive.printed(name, "transcript-line-1")
      await eventually(() => expect(readFileSync(transcriptPath, "utf8")).toContain("transcript-line-1"))
      await run(t.kill(name))
    })
  })

// --- the memory fake -------------------------------------------------------------------------

{
  const fake = makeMemoryTerminals()
  const { control } = fake
  /** A line-mode `cat` on a terminal, replayed from what was sent. */
  const catScreen = (name: string): Array<string> => {
    const lines: Array<string> = []
    let typing = ""
    const enter = () => {
      lines.push(typing, typing)
      typing = ""
    }
    for (const { text, enter: pressEnter, keys } of control.sent(name)) {
      for (const key of keys ?? []) {
        if (key === "BSpace") typing = typing.slice(0, -1)
        else if (key === "Enter") enter()
        else if (key === "Space") typing += " "
        else if ([...key].length === 1) typing += key
      }
      const parts = text.split("\n")
      parts.forEach((part, i) => {
        if (i > 0) enter()
        typing += part
      })
      if (pressEnter) enter()
    }
    return typing === "" ? lines : [...lines, typing]
  }
  /** The complete lines a line-reading program received, from what was sent. */
  const linesRead = (name: string): Array<string> =>
    control
      .sent(name)
      .map(({ text, enter }) => (enter ? `${text}\n` : text))
      .join("")
      .split("\n")
      .slice(0, -1)
  const printed = (name: string, text: string) => {
    control.setScreen(name, [text])
    control.appendTranscript(name, `${text}\r\n`)
  }
  contract("memory", () => fake.layer, {
    printed,
    printedEnv: (name, key) => printed(name, `[${control.spec(name).env[key] ?? ""}]`),
    echoesInput: (name) => control.setScreen(name, catScreen(name)),
    printsLinesRead: (name) => control.setScreen(name, ["ready", ...linesRead(name).map((l) => `got:${l}`)]),
    exited: (name, code) => control.exit(name, code),
    startedChild: async (name) => {
      const pid = control.startChild(name)
      return { pid, alive: () => control.isAlive(pid) }
    },
    paneAlive: (pid) => control.isAlive(pid),
    empty: () => makeMemoryTerminals().service
  })
}

// --- live tmux ---------------------------------------------------------------------------------

{
  const socketDir = mkdtempSync(join(tmpdir(), "warden-tmux-"))
  const socket = join(socketDir, "agents.sock")
  afterAll(() => {
    try {
      execFileSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" })
    } catch {
      // No server left (every session was killed): nothing to stop.
    }
    rmSync(socketDir, { recursive: true, force: true })
  })
  contract("tmux", () => tmuxTerminalsLayer(socket), {
    printed: () => undefined,
    printedEnv: () => undefined,
    echoesInput: () => undefined,
    printsLinesRead: () => undefined,
    exited: () => undefined,
    startedChild: async (_name, pidFile) => {
      const pid = await eventually(() => {
        const n = Number(readFileSync(pidFile, "utf8").trim())
        if (!Number.isInteger(n) || n <= 0) throw new Error(`no pid in ${pidFile} yet`)
        return n
      })
      return { pid, alive: () => pidRunning(pid) }
    },
    paneAlive: pidRunning,
    empty: () => makeTmuxTerminals(join(socketDir, "never-started.sock"))
  })
}

// --- what tmux 3.3a itself calls a key --------------------------------------------------------

describe("key names: Warden's check agrees with tmux 3.3a", () => {
  const dir = mkdtempSync(join(tmpdir(), "warden-keys-"))
  const socket = join(dir, "keys.sock")
  const tmux = (...args: string[]) => spawnSync("tmux", ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
  beforeAll(() => {
    expect(tmux("new-session", "-d", "-s", "probe", "sleep", "60").status).toBe(0)
  })
  afterAll(() => {
    tmux("kill-server")
    rmSync(dir, { recursive: true, force: true })
  })
  /** Whether tmux parses `key` as a key: bind-key refuses anything else with "unknown key". */
  const tmuxKnows = (key: string): boolean => {
    const result = tmux("bind-key", "-T", "warden-probe", "--", key.endsWith(";") ? `${key.slice(0, -1)}\\;` : key, "display-message", "x")
    return result.status === 0
  }

  it("every name Warden accepts, alone and with modifiers, is a key tmux knows", () => {
    for (const name of keyNames) {
      for (const modifiers of ["", "C-", "M-", "S-", "C-M-S-"]) {
        const key = `${modifiers}${name}`
        expect(keyProblem(key), key).toBeNull()
        expect(tmuxKnows(key), key).toBe(true)
      }
    }
  })

  it("for every printable ASCII character, alone and with C- or M-, Warden and tmux agree", () => {
    for (let code = 0x21; code <= 0x7e; code++) {
      for (const modifiers of ["", "C-", "M-"]) {
        const key = `${modifiers}${String.fromCharCode(code)}`
        expect(keyProblem(key) === null, key).toBe(tmuxKnows(key))
      }
    }
  })

  it("what Warden refuses as options or unknown names, tmux does not know as keys either", () => {
    for (const key of ["-t", "-N", "-X", "-R", "-l", "--", "F13", "C-~", "Enter;", "NotAKey", "C-", "S-", "X-a"]) {
      expect(keyProblem(key), key).not.toBeNull()
      expect(tmuxKnows(key), key).toBe(false)
    }
  })

  it("a socket that another user planted is refused before any tmux command runs", async () => {
    const planted = join(dir, "planted.sock")
    const server = createServer((c) => c.destroy())
    await new Promise<void>((resolve) => server.listen(planted, resolve))
    chownSync(planted, 65534, 65534)
    try {
      const err = await failure(makeTmuxTerminals(planted).list)
      expect(err.message).toMatch(/belongs to uid 65534/)
      expect(await Effect.runPromise(makeTmuxTerminals(planted).socketProblem)).toMatch(/belongs to uid 65534/)
      expect(await Effect.runPromise(makeTmuxTerminals(socket).socketProblem)).toBeNull()
    } finally {
      server.close()
    }
  })
})
