import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import type { IPty } from "@lydell/node-pty"
import { Context, Effect, Layer, type Scope } from "effect"
import { TerminalError, Terminals } from "./Terminals.js"
import { tmuxSocketProblem } from "./socketSafety.js"

/** A viewer's terminal size, in cells. */
export interface PtySize {
  readonly cols: number
  readonly rows: number
}

/** One `tmux attach -r` client running in a pseudo-terminal of the daemon, sized to one viewer. */
export interface PtyViewer {
  /** The tmux client's pid (to check that it ends with its viewer). */
  readonly pid: number
  readonly resize: (size: PtySize) => void
  /** Every byte the tmux client draws, as it comes. */
  readonly onData: (listener: (data: Buffer) => void) => void
  /** The tmux client exited on its own (the session or the server ended, or someone detached it). */
  readonly onExit: (listener: (exit: { readonly exitCode: number; readonly signal?: number | undefined }) => void) => void
}

/** How long a tmux client has to leave after SIGHUP before it is killed. */
const EXIT_GRACE_MS = 1_000

/** What a tmux client keeps of the daemon's environment: what tmux needs, never a secret (the same rule as tmuxTerminals.ts). */
const CLIENT_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|TZ|TMPDIR|LANG|LANGUAGE|LC_[A-Z_]+|WARDEN_TEST_RUN)$/

const clientEnv = (): Record<string, string> => {
  const env: Record<string, string> = { TERM: "xterm-256color" }
  for (const [key, value] of Object.entries(process.env)) if (CLIENT_ENV.test(key) && value !== undefined) env[key] = value
  return env
}

/**
 * Live terminals for viewers: per viewer, a read-only tmux client of the
 * agent's session in a pty. The client stays read-only for its whole life:
 * what a viewer holding control types goes to the agent's pane through
 * `type`, so no viewer ever reaches tmux's own key bindings (the prefix key,
 * its command prompt, detach) on the agents' server.
 */
export class PtyViewers extends Context.Tag("warden/PtyViewers")<
  PtyViewers,
  {
    /**
     * Runs `tmux -S <socket> attach -r -t =<session>` in a pty of `size`; the scope's end
     * hangs it up (and kills it if it lingers), so the client never outlives its viewer.
     */
    readonly attach: (session: string, size: PtySize) => Effect.Effect<PtyViewer, TerminalError, Scope.Scope>
    /**
     * Writes `data` to the session's pane exactly as given (control characters, escape sequences and CR
     * included: it is a terminal's input), through a tmux buffer pasted without any replacement.
     */
    readonly type: (session: string, data: string) => Effect.Effect<void, TerminalError>
  }
>() {}

type NodePty = typeof import("@lydell/node-pty")

/** The live viewers on `socket`; `pty` is node-pty, loaded by the daemon only (no other command pays for the native module). */
export const makePtyViewers = (socket: string, pty: NodePty): Context.Tag.Service<PtyViewers> => {
  const unsafe = (operation: string, session: string) =>
    Effect.suspend(() => {
      const problem = tmuxSocketProblem(socket)
      return problem === null ? Effect.void : Effect.fail(new TerminalError({ operation, session, reason: "unsafe-socket", detail: problem }))
    })

  const spawn = (session: string, size: PtySize) =>
    Effect.try({
      try: () =>
        pty.spawn("tmux", ["-u", "-S", socket, "attach-session", "-r", "-t", `=${session}`], {
          name: "xterm-256color",
          cols: size.cols,
          rows: size.rows,
          cwd: "/",
          env: clientEnv(),
          // Bytes, not strings: the viewer's terminal decodes them.
          encoding: null
        }),
      catch: (error) =>
        new TerminalError({ operation: "attach", session, reason: "spawn-failed", detail: `could not start tmux attach in a pty: ${error instanceof Error ? error.message : String(error)}` })
    })

  /** Hangs the client up, as closing a terminal would, and waits for it to leave; a client that lingers is killed. */
  const hangUp = (client: IPty, exited: Promise<void>) =>
    Effect.promise(async () => {
      try {
        client.kill("SIGHUP")
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), EXIT_GRACE_MS)))
      const outcome = await Promise.race([exited, late])
      clearTimeout(timer)
      if (outcome === "late") {
        try {
          process.kill(client.pid, "SIGKILL")
        } catch {
          // gone meanwhile
        }
      }
    })

  const attach = (session: string, size: PtySize) =>
    Effect.zipRight(
      unsafe("attach", session),
      Effect.acquireRelease(
        Effect.map(spawn(session, size), (client) => {
          const exited = new Promise<void>((resolve) => client.onExit(() => resolve()))
          return { client, exited }
        }),
        ({ client, exited }) => hangUp(client, exited)
      )
    ).pipe(
      Effect.map(
        ({ client }): PtyViewer => ({
          pid: client.pid,
          resize: (next) => client.resize(next.cols, next.rows),
          onData: (listener) => void client.onData((data) => listener(typeof data === "string" ? Buffer.from(data) : (data as Buffer))),
          onExit: (listener) => void client.onExit(listener)
        })
      )
    )

  const type = (session: string, data: string) =>
    Effect.zipRight(
      unsafe("type", session),
      Effect.async<void, TerminalError>((resume) => {
        const buffer = `warden-tty-${randomBytes(6).toString("hex")}`
        // One invocation: load the bytes from stdin, paste them raw (-r: no LF to CR), delete the buffer (-d).
        const child = execFile(
          "tmux",
          ["-S", socket, "load-buffer", "-b", buffer, "-", ";", "paste-buffer", "-r", "-d", "-b", buffer, "-t", `=${session}:`],
          { env: clientEnv(), timeout: 15_000, killSignal: "SIGKILL" },
          (error, _stdout, stderr) => {
            if (error === null) return resume(Effect.void)
            resume(
              Effect.fail(
                new TerminalError({ operation: "type", session, reason: "command-failed", detail: `tmux paste-buffer failed on ${socket}: ${String(stderr).trim() || error.message}` })
              )
            )
          }
        )
        child.stdin?.on("error", () => undefined)
        child.stdin?.end(Buffer.from(data, "utf8"))
        return Effect.sync(() => void child.kill("SIGKILL"))
      })
    )

  return { attach, type }
}

/** The live viewers on the agents' socket (the one `Terminals` uses); node-pty is loaded when this layer is built. */
export const PtyViewersLive = Layer.effect(
  PtyViewers,
  Effect.gen(function* () {
    const terminals = yield* Terminals
    const loaded = yield* Effect.promise(() => import("@lydell/node-pty"))
    // A CommonJS module: its functions may be on the default export only.
    const pty = ((loaded as { default?: NodePty }).default ?? loaded) as NodePty
    return makePtyViewers(terminals.socket, pty)
  })
)
