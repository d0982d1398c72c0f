import { randomBytes } from "node:crypto"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { Effect, Either, Exit, Runtime, Schema, Scope } from "effect"
import { WebSocketServer, type WebSocket } from "ws"
import { formatIssues } from "../config/formatIssues.js"
import { DaemonSettings } from "../daemon/resources.js"
import { DaemonEventSink } from "../daemon/supervisionLayer.js"
import { type PtySize, type PtyViewer, PtyViewers } from "../terminals/ptyViewer.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { TerminalUnavailable } from "./apiErrors.js"

/** The sizes a viewer may ask for, in cells. */
export const TTY_LIMITS = {
  cols: { min: 2, max: 500 },
  rows: { min: 1, max: 300 },
  /** Characters in one input message. */
  inputChars: 4096,
  /** Bytes a viewer may have waiting on its socket before it is dropped as too slow. */
  maxBufferedBytes: 1024 * 1024
} as const

const Cols = Schema.Int.pipe(Schema.between(TTY_LIMITS.cols.min, TTY_LIMITS.cols.max))
const Rows = Schema.Int.pipe(Schema.between(TTY_LIMITS.rows.min, TTY_LIMITS.rows.max))

/** What a viewer sends, as JSON text frames. */
export const ViewerMessage = Schema.Union(
  Schema.Struct({ type: Schema.Literal("resize"), cols: Cols, rows: Rows }),
  Schema.Struct({ type: Schema.Literal("input"), data: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(TTY_LIMITS.inputChars)) }),
  Schema.Struct({ type: Schema.Literal("control"), take: Schema.Boolean })
)
export type ViewerMessage = typeof ViewerMessage.Type

const decodeMessage = Schema.decodeUnknownEither(ViewerMessage, { errors: "all", onExcessProperty: "error" })

/** A problem with a size asked in the URL (`?cols=&rows=`), or null; absent values take the defaults. */
export const sizeProblem = (cols: number, rows: number): string | null => {
  const problems: Array<string> = []
  if (!Number.isInteger(cols) || cols < TTY_LIMITS.cols.min || cols > TTY_LIMITS.cols.max) problems.push(`cols must be an integer from ${TTY_LIMITS.cols.min} to ${TTY_LIMITS.cols.max}`)
  if (!Number.isInteger(rows) || rows < TTY_LIMITS.rows.min || rows > TTY_LIMITS.rows.max) problems.push(`rows must be an integer from ${TTY_LIMITS.rows.min} to ${TTY_LIMITS.rows.max}`)
  return problems.length === 0 ? null : problems.join("; ")
}

interface Viewer {
  readonly id: string
  readonly bead: string
  readonly session: string
  readonly ws: WebSocket
  readonly scope: Scope.CloseableScope
  pty: PtyViewer | null
  /** Input is typed in order, one paste after the other. */
  typing: Promise<unknown>
  /** Set once the viewer is on its way out: its client's exit is then expected, not news. */
  leaving: boolean
}

/** The live terminals of the daemon's beads, one websocket and one tmux client per viewer. */
export interface TtyBridge {
  /** The bead's tmux session name, if it runs; a 409 naming it if it does not. */
  readonly liveSession: (bead: string) => Effect.Effect<string, TerminalUnavailable>
  /** Takes over an authorized upgrade: attaches a read-only client of `session` sized to the viewer. */
  readonly serve: (req: IncomingMessage, socket: Duplex, head: Buffer, target: { readonly bead: string; readonly session: string; readonly size: PtySize; readonly pingMs: number }) => void
  /** Closes every viewer (1001, the daemon stops) and waits until their tmux clients are gone. */
  readonly closeAll: Effect.Effect<void>
}

/**
 * The websocket side of the live terminal: per viewer a `tmux attach -r` in a
 * pty (`PtyViewers`), its output as binary frames, the viewer's JSON messages
 * (resize, input, control) checked before anything is done. Read-only by
 * default; one viewer per bead at a time may take control, which is logged,
 * published on the feed (`sessions`/`terminal.control`) and told to every
 * viewer of the bead.
 */
export const makeTtyBridge: Effect.Effect<TtyBridge, never, PtyViewers | Terminals | DaemonSettings | DaemonEventSink> = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<PtyViewers | Terminals>()
  const ptys = yield* PtyViewers
  const terminals = yield* Terminals
  const { log } = yield* DaemonSettings
  const sink = yield* DaemonEventSink
  const run = Runtime.runPromise(runtime)
  const server = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 })
  const viewers = new Set<Viewer>()
  /** Which viewer holds control of each bead's terminal. */
  const controllers = new Map<string, string>()

  const sendText = (viewer: Viewer, message: object) => {
    if (viewer.ws.readyState === viewer.ws.OPEN) viewer.ws.send(JSON.stringify(message))
  }
  const refuse = (viewer: Viewer, error: string) => sendText(viewer, { type: "error", error })

  const announce = (viewer: Viewer, taken: boolean, why: string) => {
    const at = new Date().toISOString()
    log(taken ? "terminal control taken" : "terminal control released", { bead: viewer.bead, viewer: viewer.id, why })
    sink.publish("sessions", "terminal.control", { bead: viewer.bead, viewer: viewer.id, taken, at })
    for (const other of viewers) if (other.bead === viewer.bead) sendText(other, { type: "control", bead: viewer.bead, by: viewer.id, taken, at })
  }

  const release = (viewer: Viewer, why: string) => {
    if (controllers.get(viewer.bead) !== viewer.id) return false
    controllers.delete(viewer.bead)
    announce(viewer, false, why)
    return true
  }

  /** Ends a viewer once: control given back, its client hung up, its socket closed with `reason`. */
  const leave = (viewer: Viewer, code: number, reason: string) => {
    if (viewer.leaving) return
    viewer.leaving = true
    viewers.delete(viewer)
    release(viewer, "the viewer left")
    // A close reason holds at most 123 bytes.
    if (viewer.ws.readyState === viewer.ws.OPEN || viewer.ws.readyState === viewer.ws.CONNECTING) viewer.ws.close(code, Buffer.from(reason).subarray(0, 123).toString())
    return Effect.runPromise(Scope.close(viewer.scope, Exit.void))
  }

  const onMessage = (viewer: Viewer, data: Buffer, binary: boolean) => {
    if (binary) return refuse(viewer, "send JSON text frames: {\"type\":\"resize\"|\"input\"|\"control\", ...}")
    let json: unknown
    try {
      json = JSON.parse(data.toString("utf8"))
    } catch (error) {
      return refuse(viewer, `not JSON: ${(error as Error).message}`)
    }
    const decoded = decodeMessage(json)
    if (Either.isLeft(decoded)) {
      return refuse(viewer, formatIssues(decoded.left).map((i) => `${i.path === "" ? "(message)" : i.path}: ${i.message}`).join("; "))
    }
    const message = decoded.right
    switch (message.type) {
      case "resize":
        viewer.pty?.resize({ cols: message.cols, rows: message.rows })
        return
      case "control": {
        const holder = controllers.get(viewer.bead)
        if (!message.take) {
          if (!release(viewer, "released by the viewer")) refuse(viewer, "you do not have control of this terminal")
          return
        }
        if (holder === viewer.id) return sendText(viewer, { type: "control", bead: viewer.bead, by: viewer.id, taken: true, at: new Date().toISOString() })
        if (holder !== undefined) return refuse(viewer, `viewer ${holder} has control of ${viewer.bead}: it must release it (or leave) first`)
        controllers.set(viewer.bead, viewer.id)
        announce(viewer, true, "taken by the viewer")
        return
      }
      case "input": {
        if (controllers.get(viewer.bead) !== viewer.id) {
          return refuse(viewer, "read-only: nothing was typed; take control first with {\"type\":\"control\",\"take\":true}")
        }
        viewer.typing = viewer.typing.then(() =>
          run(ptys.type(viewer.session, message.data)).catch((error: unknown) => refuse(viewer, `not typed: ${error instanceof Error ? error.message : String(error)}`))
        )
        return
      }
    }
  }

  const serve: TtyBridge["serve"] = (req, socket, head, target) => {
    server.handleUpgrade(req, socket, head, (ws) => {
      const viewer: Viewer = {
        id: `v-${randomBytes(4).toString("hex")}`,
        bead: target.bead,
        session: target.session,
        ws,
        scope: Effect.runSync(Scope.make()),
        pty: null,
        typing: Promise.resolve(),
        leaving: false
      }
      viewers.add(viewer)
      ws.on("message", (data, binary) => onMessage(viewer, data as Buffer, binary))
      ws.on("close", () => void leave(viewer, 1000, "closed"))
      ws.on("error", () => void leave(viewer, 1011, "socket error"))
      let alive = true
      ws.on("pong", () => (alive = true))
      const heartbeat = setInterval(() => {
        if (!alive) return void leave(viewer, 1001, "no answer to ping")
        alive = false
        ws.ping()
      }, target.pingMs)
      heartbeat.unref()
      ws.on("close", () => clearInterval(heartbeat))

      run(Scope.extend(ptys.attach(viewer.session, target.size), viewer.scope)).then(
        (pty) => {
          if (viewer.leaving) return
          viewer.pty = pty
          sendText(viewer, { type: "hello", viewer: viewer.id, bead: viewer.bead, cols: target.size.cols, rows: target.size.rows, control: controllers.get(viewer.bead) ?? null })
          pty.onData((data) => {
            if (viewer.leaving || ws.readyState !== ws.OPEN) return
            // A viewer that does not keep up is dropped, never buffered without bound.
            if (ws.bufferedAmount + data.length > TTY_LIMITS.maxBufferedBytes) return void leave(viewer, 1013, "slow consumer: the terminal's output was not read in time")
            ws.send(data, { binary: true })
          })
          pty.onExit(({ exitCode }) => {
            if (viewer.leaving) return
            void run(Effect.orElseSucceed(terminals.exists(viewer.session), () => false)).then((exists) =>
              leave(viewer, exists ? 1011 : 1000, exists ? `the terminal's tmux client exited (code ${exitCode})` : `the session ended: ${viewer.session} is gone`)
            )
          })
        },
        (error: unknown) => void leave(viewer, 1011, `could not attach: ${error instanceof Error ? error.message : String(error)}`)
      )
    })
  }

  const liveSession = (bead: string) => {
    const session = sessionNameFor(bead)
    return Effect.flatMap(Effect.orElseSucceed(terminals.exists(session), () => false), (exists) =>
      exists ? Effect.succeed(session) : Effect.fail(new TerminalUnavailable({ bead, session }))
    )
  }

  const closeAll = Effect.promise(() => Promise.all([...viewers].map((viewer) => leave(viewer, 1001, "the daemon is stopping")))).pipe(Effect.asVoid)

  return { liveSession, serve, closeAll }
})
