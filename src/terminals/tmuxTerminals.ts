import { execFile } from "node:child_process"
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { Context, Effect, Layer } from "effect"
import { type CreateTerminal, type TerminalInfo, TerminalError, type TerminalErrorReason, Terminals } from "./Terminals.js"
import { keysProblem } from "./keyNames.js"
import { tmuxSocketProblem } from "./socketSafety.js"
import { controlCharacterProblem } from "./typedText.js"

type TerminalsService = Context.Tag.Service<Terminals>

/** What one tmux (or ps) invocation produced; a non-zero exit is data, not a failure. */
interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const TMUX = "tmux"
const RUN_TIMEOUT_MS = 15_000
const DEFAULT_WIDTH = 200
const DEFAULT_HEIGHT = 50
const KILL_GRACE_MS = 1_000
const KILL_POLL_MS = 50
/** Attempts for a command that met a server on its way out (see `serverWentAway`). */
const SERVER_GONE_ATTEMPTS = 5

/** POSIX shell single-quoting. */
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** tmux expands formats (`#{...}`, `#S`, ...) in `-s`, `-c` and pipe-pane's command: `##` is a literal `#`. */
const escapeFormat = (s: string): string => s.replace(/#/g, "##")

/**
 * tmux splits its argv into commands at any argument *ending* in `;` (dropping
 * the `;`), and turns a trailing `\;` into `;`. Escaping a trailing `;` as `\;`
 * passes every argument through unchanged (including ones ending in `\;`).
 */
const escapeArg = (s: string): string => (s.endsWith(";") ? `${s.slice(0, -1)}\\;` : s)

/** Joins tmux commands into one invocation, separated by `;` arguments. */
const chain = (...commands: ReadonlyArray<ReadonlyArray<string>>): Array<string> =>
  commands.flatMap((command, i) => [...(i === 0 ? [] : [";"]), ...command.map(escapeArg)])

const VALID_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * What a tmux client keeps of our environment. The client that starts the server hands it its whole
 * environment (`show-environment -g`, inherited by every pane), so only what tmux itself needs goes:
 * never an API key. Agents get their environment through `CreateTerminal.env`.
 */
// WARDEN_TEST_RUN marks the processes of a test run (test/support/noLeftovers.ts): a tmux server the run left is found by it.
const CLIENT_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|TERM|TZ|TMPDIR|LANG|LANGUAGE|LC_[A-Z_]+|WARDEN_TEST_RUN)$/

/** The tmux client's own environment: the few variables tmux needs, none tying it to an enclosing tmux. */
const clientEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (CLIENT_ENV.test(key) && value !== undefined) env[key] = value
  return env
}

/**
 * Runs in the pane: sources the environment file (`$1`), removes it, then runs the program. The file
 * holds only `export NAME='value'` lines (names checked, values single-quoted), so sourcing runs nothing.
 */
const ENV_WRAPPER = `. "$1" || exit 96; rm -f -- "$1"; shift; exec "$@"`

/** The environment as sh assignments: TMUX* (the pane's own) and names sh cannot hold are left out. */
const envFileText = (env: Readonly<Record<string, string>>): string =>
  Object.entries(env)
    .filter(([key]) => !key.startsWith("TMUX") && VALID_ENV_NAME.test(key))
    .map(([key, value]) => `export ${key}=${shellQuote(value)}\n`)
    .join("")

const exec = (
  file: string,
  args: ReadonlyArray<string>,
  input: string | undefined,
  onSpawnError: (detail: string) => TerminalError
): Effect.Effect<RunResult, TerminalError> =>
  Effect.async<RunResult, TerminalError>((resume) => {
    const child = execFile(
      file,
      args as Array<string>,
      { env: clientEnv(), timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error === null) {
          resume(Effect.succeed({ code: 0, stdout, stderr }))
          return
        }
        const code = (error as NodeJS.ErrnoException & { code?: unknown }).code
        if (typeof code === "number") {
          resume(Effect.succeed({ code, stdout, stderr }))
        } else if ((error as { killed?: boolean }).killed) {
          resume(Effect.fail(onSpawnError(`${file} ${args.join(" ")} timed out after ${RUN_TIMEOUT_MS}ms: ${stderr.trim()}`)))
        } else {
          resume(Effect.fail(onSpawnError(`could not run ${file}: ${error.message}${stderr.trim() ? `: ${stderr.trim()}` : ""}`)))
        }
      }
    )
    child.stdin?.on("error", () => undefined)
    child.stdin?.end(input ?? "")
    return Effect.sync(() => {
      child.kill("SIGKILL")
    })
  })

/**
 * With `exit-empty` on, a server whose last session was just killed exits on its next
 * loop, even if a client has connected meanwhile: that client's command never ran and
 * tmux says "server exited unexpectedly" (or "lost server"). Running it again is safe;
 * it then meets no server, or starts a new one.
 */
const serverWentAway = (result: RunResult): boolean =>
  result.code !== 0 && /server exited unexpectedly|lost server/i.test(result.stderr)

/**
 * tmux's ways of saying there is no server on the socket, or no such session/window/pane.
 * "no current target" is what a server with no sessions left (about to exit) says.
 */
const isNotFound = (stderr: string): boolean =>
  /no server running on|error connecting to .*\((No such file or directory|Connection refused)\)|can't find (session|window|pane)|no such (session|window|pane)|session not found|no current target/i.test(
    stderr
  )

const nonEmptyLines = (s: string): Array<string> => s.split("\n").filter((line) => line.length > 0)

const dropTrailingEmpty = (lines: Array<string>): Array<string> => {
  let end = lines.length
  while (end > 0 && lines[end - 1]!.trim() === "") end--
  return lines.slice(0, end)
}

interface PsEntry {
  readonly pid: number
  readonly ppid: number
  /** The process's session id: a pane's program leads its own session, and a `nohup` job keeps it. */
  readonly sid: number
  readonly zombie: boolean
  /** Start time as ps prints it: with the pid, it identifies the process (pids are reused). */
  readonly started: string
}

const parsePs = (stdout: string): Array<PsEntry> =>
  nonEmptyLines(stdout).flatMap((line) => {
    const [pid, ppid, sid, stat, ...started] = line.trim().split(/\s+/)
    const p = Number(pid)
    const pp = Number(ppid)
    const sd = Number(sid)
    if (!Number.isInteger(p) || !Number.isInteger(pp) || !Number.isInteger(sd) || stat === undefined) return []
    return [{ pid: p, ppid: pp, sid: sd, zombie: stat.startsWith("Z"), started: started.join(" ") }]
  })

/** Every process descending from `roots` (roots included), from one `ps` snapshot. */
const descendants = (entries: ReadonlyArray<PsEntry>, roots: ReadonlyArray<number>): Array<PsEntry> => {
  const byPid = new Map(entries.map((e) => [e.pid, e]))
  const children = new Map<number, Array<PsEntry>>()
  for (const e of entries) {
    const list = children.get(e.ppid)
    if (list) list.push(e)
    else children.set(e.ppid, [e])
  }
  const seen = new Set<number>()
  const out: Array<PsEntry> = []
  const queue = roots.flatMap((pid) => {
    const e = byPid.get(pid)
    return e ? [e] : []
  })
  while (queue.length > 0) {
    const e = queue.shift()!
    if (seen.has(e.pid)) continue
    seen.add(e.pid)
    out.push(e)
    for (const child of children.get(e.pid) ?? []) queue.push(child)
  }
  return out
}

const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {
    // Already gone (ESRCH) or not ours to signal (EPERM): nothing more to do.
  }
}

/** The live `Terminals`: tmux sessions on `socket`, every target exact (`=name`). */
export const makeTmuxTerminals = (socket: string): TerminalsService => {
  /** For session-scoped commands (has-session, kill-session). */
  const sessionTarget = (name: string): string => `=${name}`
  /**
   * For window- and pane-scoped commands (list-panes, capture-pane, send-keys, ...).
   * These must get `=name:`: given a bare `=name` that matches no session, tmux 3.3a
   * goes on to resolve it some other way and can land on `name10` (list-panes even
   * with -s), or says "can't find pane". With the colon it fails cleanly.
   */
  const paneTarget = (name: string): string => `=${name}:`

  const tmux = (
    operation: string,
    session: string,
    args: ReadonlyArray<string>,
    input?: string
  ): Effect.Effect<RunResult, TerminalError> => {
    // Before every client call: a socket someone else planted would receive all of it.
    const unsafe = Effect.suspend(() => {
      const problem = tmuxSocketProblem(socket)
      return problem === null ? Effect.void : Effect.fail(new TerminalError({ operation, session, reason: "unsafe-socket", detail: problem }))
    })
    const once = Effect.zipRight(
      unsafe,
      exec(TMUX, ["-S", socket, ...args], input, (detail) => new TerminalError({ operation, session, reason: "spawn-failed", detail }))
    )
    const attempt = (n: number): Effect.Effect<RunResult, TerminalError> =>
      Effect.flatMap(once, (result) =>
        serverWentAway(result) && n < SERVER_GONE_ATTEMPTS
          ? Effect.zipRight(Effect.sleep(20 * n), attempt(n + 1))
          : Effect.succeed(result)
      )
    return attempt(1)
  }

  const failed = (operation: string, session: string, what: string, result: RunResult): TerminalError =>
    new TerminalError({
      operation,
      session,
      reason: "command-failed",
      detail: `tmux ${what} failed (exit ${result.code}) on socket ${socket}: ${result.stderr.trim() || "(no message)"}`
    })

  /** Runs a tmux command that must succeed. */
  const tmuxOk = (operation: string, session: string, args: ReadonlyArray<string>, input?: string) =>
    Effect.flatMap(tmux(operation, session, args, input), (result) =>
      result.code === 0 ? Effect.succeed(result) : Effect.fail(failed(operation, session, args[0] ?? "", result))
    )

  interface PaneState {
    readonly info: TerminalInfo
    /** The pane is dead but tmux has not collected the program's exit status (yet). */
    readonly statusMissing: boolean
    readonly serverPid: number
  }

  const paneState = (name: string): Effect.Effect<PaneState | null, TerminalError> =>
    Effect.flatMap(
      tmux("info", name, [
        "list-panes",
        "-t",
        paneTarget(name),
        "-F",
        "#{pane_active} #{pane_pid} #{pane_dead} #{pane_dead_status} #{pane_dead_signal} #{pid} #{session_name}"
      ]),
      (result) => {
        if (result.code !== 0) {
          return isNotFound(result.stderr) ? Effect.succeed(null) : Effect.fail(failed("info", name, "list-panes", result))
        }
        // The active pane of the session's current window (the program's, unless someone split it).
        const panes = nonEmptyLines(result.stdout)
          .map((line) => line.split(" "))
          .filter((fields) => fields.slice(6).join(" ") === name)
        const pane = panes.find((fields) => fields[0] === "1") ?? panes[0]
        if (pane === undefined) return Effect.succeed(null)
        const [, pid, dead, status, deathSignal, serverPid] = pane
        const isDead = dead === "1"
        const pidNumber = Number(pid)
        const exitCode = status === undefined || status === "" ? null : Number(status)
        const signalNumber = deathSignal === undefined || deathSignal === "" ? null : Number(deathSignal)
        // Killed by a signal: reported the way a shell reports it in `$?`, 128 + the signal number.
        const deadStatus = !isDead
          ? null
          : exitCode !== null && Number.isFinite(exitCode)
            ? exitCode
            : signalNumber !== null && Number.isFinite(signalNumber)
              ? 128 + signalNumber
              : null
        return Effect.succeed<PaneState>({
          info: {
            name,
            panePid: isDead || !Number.isInteger(pidNumber) || pidNumber <= 0 ? null : pidNumber,
            dead: isDead,
            deadStatus
          },
          statusMissing: isDead && deadStatus === null,
          serverPid: Number(serverPid)
        })
      }
    )

  /**
   * tmux 3.3a (built with libutempter) can miss the SIGCHLD of a pane's program: the
   * pane is dead, the program a zombie, and `pane_dead_status` stays empty until some
   * other child of the server exits. A SIGCHLD sent to the server makes it reap now
   * (the workaround tmux's maintainer gives in tmux/tmux#311).
   */
  const info = (name: string): Effect.Effect<TerminalInfo | null, TerminalError> => {
    const attempt = (n: number): Effect.Effect<TerminalInfo | null, TerminalError> =>
      Effect.flatMap(paneState(name), (state) => {
        if (state === null) return Effect.succeed(null)
        if (!state.statusMissing || n >= 3 || !Number.isInteger(state.serverPid) || state.serverPid <= 1) {
          return Effect.succeed(state.info)
        }
        signal(state.serverPid, "SIGCHLD")
        return Effect.zipRight(Effect.sleep(10 * n), attempt(n + 1))
      })
    return attempt(1)
  }

  const exists = (name: string): Effect.Effect<boolean, TerminalError> =>
    Effect.flatMap(tmux("exists", name, ["has-session", "-t", sessionTarget(name)]), (result) =>
      result.code === 0
        ? Effect.succeed(true)
        : isNotFound(result.stderr)
          ? Effect.succeed(false)
          : Effect.fail(failed("exists", name, "has-session", result))
    )

  const create = (spec: CreateTerminal): Effect.Effect<TerminalInfo, TerminalError> => {
    const name = spec.name
    const fail = (reason: TerminalErrorReason, detail: string) =>
      Effect.fail(new TerminalError({ operation: "create", session: name, reason, detail }))
    if (name === "" || /[.:]/.test(name)) {
      return fail("invalid-input", `create: invalid session name ${JSON.stringify(name)} (must be non-empty, without "." or ":")`)
    }
    if (spec.command.length === 0) return fail("invalid-input", "create: the command is empty")
    const width = spec.width ?? DEFAULT_WIDTH
    const height = spec.height ?? DEFAULT_HEIGHT
    if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
      return fail("invalid-input", `create: invalid size ${width}x${height}`)
    }
    const cwd = resolve(spec.cwd)
    const transcript = resolve(spec.transcriptPath)
    const envFile = resolve(spec.envFile ?? `${transcript}.env`)

    const prepare = Effect.try({
      try: () => {
        if (!statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) {
          throw new Error(`working directory ${cwd} does not exist or is not a directory`)
        }
        mkdirSync(dirname(transcript), { recursive: true })
        mkdirSync(dirname(resolve(socket)), { recursive: true })
        // Created afresh, so it is 0600 whatever was there; only the pane's wrapper reads it, then removes it.
        rmSync(envFile, { force: true })
        mkdirSync(dirname(envFile), { recursive: true })
        writeFileSync(envFile, envFileText(spec.env), { mode: 0o600, flag: "wx" })
      },
      catch: (e) =>
        new TerminalError({
          operation: "create",
          session: name,
          reason: "io",
          detail: `create: ${e instanceof Error ? e.message : String(e)}`
        })
    })

    // The environment goes through the file, never through tmux's argv (no `-e KEY=VALUE`).
    const command = ["/bin/sh", "-c", ENV_WRAPPER, "warden-env", envFile, ...spec.command]
    const args = chain(
      [
        "new-session",
        "-d",
        "-s",
        escapeFormat(name),
        "-c",
        escapeFormat(cwd),
        "-x",
        String(width),
        "-y",
        String(height),
        "--",
        ...command
      ],
      // Same invocation, so the server runs these before it can notice the program exited.
      ["set-option", "-w", "-t", paneTarget(name), "remain-on-exit", "on"],
      // The window keeps its own size whoever attaches: without it a small viewer (a phone) shrinks
      // the agent's window, even when its client is read-only or sets ignore-size.
      ["set-option", "-w", "-t", paneTarget(name), "window-size", "manual"],
      ["pipe-pane", "-O", "-t", paneTarget(name), escapeFormat(`cat >> ${shellQuote(transcript)}`)]
    )

    return prepare.pipe(
      Effect.zipRight(tmux("create", name, args)),
      // No pane will read the environment file of a session that was not created.
      Effect.tapError(() => Effect.sync(() => rmSync(envFile, { force: true }))),
      Effect.flatMap((result) => {
        if (result.code === 0) return Effect.void
        rmSync(envFile, { force: true })
        if (/duplicate session/i.test(result.stderr)) {
          return fail("exists", `create: session ${name} already exists on socket ${socket}`)
        }
        return Effect.fail(failed("create", name, "new-session", result))
      }),
      Effect.zipRight(info(name)),
      Effect.flatMap((i) => (i === null ? fail("command-failed", `create: session ${name} vanished right after it was created`) : Effect.succeed(i)))
    )
  }

  const capture = (name: string, history = 0): Effect.Effect<ReadonlyArray<string>, TerminalError> => {
    const lines = Math.max(0, Math.floor(Number.isFinite(history) ? history : 0))
    const target = paneTarget(name)
    const captureFrom = (from: number) => ["capture-pane", "-p", "-J", "-t", target, "-S", `-${from}`]
    // Once tmux has a dead pane's exit status it writes "Pane is dead (...)" after a
    // linefeed on the bottom line, which scrolls the program's top line into history:
    // then the screen starts one line earlier.
    const scrolled = "#{?#{&&:#{pane_dead},#{||:#{!=:#{pane_dead_status},},#{!=:#{pane_dead_signal},}}},1,0}"
    return Effect.flatMap(
      tmuxOk("capture", name, chain(["display-message", "-p", "-t", target, scrolled], captureFrom(lines))),
      (result) => {
        const newline = result.stdout.indexOf("\n")
        const screen = result.stdout.slice(newline + 1)
        return result.stdout.slice(0, newline) === "1"
          ? Effect.map(tmuxOk("capture", name, captureFrom(lines + 1)), (again) => dropTrailingEmpty(again.stdout.split("\n")))
          : Effect.succeed(dropTrailingEmpty(screen.split("\n")))
      }
    )
  }

  const sendText = (name: string, text: string, enter: boolean): Effect.Effect<void, TerminalError> => {
    const target = paneTarget(name)
    // Defence in depth: the API and the CLI refuse these first, with the same words.
    const refused = controlCharacterProblem(text)
    if (refused !== null) return Effect.fail(new TerminalError({ operation: "sendText", session: name, reason: "invalid-input", detail: `sendText: ${refused}` }))
    const typeText: Effect.Effect<unknown, TerminalError> =
      text === ""
        ? enter
          ? Effect.void
          : tmuxOk("sendText", name, ["has-session", "-t", sessionTarget(name)])
        : /[\r\n]/.test(text)
          ? tmuxOk(
              "sendText",
              name,
              chain(
                ["load-buffer", "-b", `warden-send-${name}`, "-"],
                ["paste-buffer", "-p", "-d", "-b", `warden-send-${name}`, "-t", target]
              ),
              text
            )
          : tmuxOk("sendText", name, chain(["send-keys", "-l", "-t", target, "--", text]))
    const pressEnter: Effect.Effect<unknown, TerminalError> = enter
      ? tmuxOk("sendText", name, ["send-keys", "-t", target, "--", "Enter"])
      : Effect.void
    return Effect.asVoid(Effect.zipRight(typeText, pressEnter))
  }

  const sendKeys = (name: string, keys: ReadonlyArray<string>): Effect.Effect<void, TerminalError> => {
    // tmux would read a key starting with "-" as an option (-t, -N, -X, ...) and type an unknown name literally.
    const refused = keysProblem(keys)
    if (refused !== null) return Effect.fail(new TerminalError({ operation: "sendKeys", session: name, reason: "invalid-input", detail: `sendKeys: ${refused}` }))
    return keys.length === 0
      ? Effect.asVoid(tmuxOk("sendKeys", name, ["has-session", "-t", sessionTarget(name)]))
      : Effect.asVoid(tmuxOk("sendKeys", name, chain(["send-keys", "-t", paneTarget(name), "--", ...keys])))
  }

  const ps = (operation: string, session: string): Effect.Effect<Array<PsEntry>, TerminalError> =>
    Effect.flatMap(
      exec(
        "ps",
        ["-e", "-o", "pid=,ppid=,sid=,stat=,lstart="],
        undefined,
        (detail) => new TerminalError({ operation, session, reason: "spawn-failed", detail })
      ),
      (result) =>
        result.code === 0
          ? Effect.succeed(parsePs(result.stdout))
          : Effect.fail(
              new TerminalError({ operation, session, reason: "command-failed", detail: `ps failed (exit ${result.code}): ${result.stderr.trim()}` })
            )
    )

  const kill = (name: string): Effect.Effect<void, TerminalError> =>
    Effect.gen(function* () {
      const panes = yield* tmux("kill", name, [
        "list-panes",
        "-s",
        "-t",
        paneTarget(name),
        "-F",
        "#{pane_pid} #{pane_dead} #{session_name}"
      ])
      if (panes.code !== 0) {
        if (isNotFound(panes.stderr)) return
        return yield* Effect.fail(failed("kill", name, "list-panes", panes))
      }
      // A dead pane's pid may already belong to someone else: only live panes are roots.
      const roots = nonEmptyLines(panes.stdout).flatMap((line) => {
        const [pid, dead, ...session] = line.split(" ")
        const n = Number(pid)
        return session.join(" ") === name && dead === "0" && Number.isInteger(n) && n > 0 ? [n] : []
      })
      const entries = roots.length > 0 ? yield* ps("kill", name) : []
      // The pane's tree, plus what left it but stayed in its session (reparented `nohup` or `&` jobs).
      const inTree = new Set(descendants(entries, roots).map((e) => e.pid))
      const tree = entries.filter((e) => !e.zombie && (inTree.has(e.pid) || roots.includes(e.sid)))
      for (const p of tree) signal(p.pid, "SIGTERM")

      const killed = yield* tmux("kill", name, ["kill-session", "-t", sessionTarget(name)])
      if (killed.code !== 0 && !isNotFound(killed.stderr)) {
        return yield* Effect.fail(failed("kill", name, "kill-session", killed))
      }

      if (tree.length === 0) return
      const survivors = (entries: ReadonlyArray<PsEntry>): Array<PsEntry> => {
        const now = new Map(entries.map((e) => [e.pid, e]))
        return tree.filter((p) => {
          const e = now.get(p.pid)
          return e !== undefined && !e.zombie && e.started === p.started
        })
      }
      const deadline = Date.now() + KILL_GRACE_MS
      let left = survivors(yield* ps("kill", name))
      while (left.length > 0 && Date.now() < deadline) {
        yield* Effect.sleep(KILL_POLL_MS)
        left = survivors(yield* ps("kill", name))
      }
      for (const p of left) signal(p.pid, "SIGKILL")
    })

  const panes: Effect.Effect<ReadonlyArray<{ session: string; dead: boolean; deadStatus: number | null }>, TerminalError> = Effect.flatMap(
    tmux("panes", "", ["list-panes", "-a", "-F", "#{session_name}\t#{pane_dead}\t#{pane_dead_status}"]),
    (result) => {
      if (result.code !== 0) return isNotFound(result.stderr) ? Effect.succeed([]) : Effect.fail(failed("panes", "", "list-panes", result))
      return Effect.succeed(
        nonEmptyLines(result.stdout).map((line) => {
          const [session, dead, status] = line.split("\t")
          return { session: session ?? "", dead: dead === "1", deadStatus: status === undefined || status === "" ? null : Number(status) }
        })
      )
    }
  )

  const list: Effect.Effect<ReadonlyArray<string>, TerminalError> = Effect.flatMap(
    tmux("list", "", ["list-sessions", "-F", "#{session_name}"]),
    (result) =>
      result.code === 0
        ? Effect.succeed(nonEmptyLines(result.stdout))
        : isNotFound(result.stderr)
          ? Effect.succeed([])
          : Effect.fail(failed("list", "", "list-sessions", result))
  )

  const socketProblem = Effect.sync(() => tmuxSocketProblem(socket))

  return { socket, socketProblem, create, exists, info, capture, sendText, sendKeys, kill, panes, list }
}

export const tmuxTerminalsLayer = (socket: string): Layer.Layer<Terminals> =>
  Layer.succeed(Terminals, makeTmuxTerminals(socket))
