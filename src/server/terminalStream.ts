import * as fs from "node:fs"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { WebSocketServer } from "ws"
import { readFrom } from "../workspace/readRange.js"

export interface TerminalStreamOptions {
  readonly transcriptPath: string
  /**
   * Sends what the client types to the agent's terminal (checked as the input API checks it);
   * absent for a read-only stream. A refusal goes back to the client as a text frame `{"error": ...}`.
   */
  readonly input: ((text: string) => Promise<unknown>) | null
  readonly maxBufferedBytes: number
  /** How much of the transcript a new client gets first. */
  readonly backlogBytes: number
  /** A client that answers no ping within this is dropped (a silent viewer is fine; a dead one is not). */
  readonly pingMs: number
}

const server = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 })

/**
 * One session's terminal, live: the transcript's tail, then every byte the
 * agent prints, as binary frames. Read-only unless the client asked for input
 * and may have it; a client that does not keep up is disconnected, never
 * buffered without bound.
 */
export const streamTerminal = (req: IncomingMessage, socket: Duplex, head: Buffer, options: TerminalStreamOptions): void => {
  server.handleUpgrade(req, socket, head, (ws) => {
    let offset = 0
    try {
      offset = Math.max(0, fs.statSync(options.transcriptPath).size - options.backlogBytes)
    } catch {
      // No transcript yet: the stream starts at its beginning once it appears.
      offset = 0
    }
    let reading = false
    const pump = () => {
      if (reading || ws.readyState !== ws.OPEN) return
      reading = true
      try {
        const read = readFrom(options.transcriptPath, offset, 256 * 1024)
        if (read !== null && read.data.length > 0) {
          if (ws.bufferedAmount + read.data.length > options.maxBufferedBytes) {
            ws.close(1013, "slow consumer")
            ws.terminate()
            return
          }
          offset += read.data.length
          ws.send(read.data, { binary: true })
          if (offset < read.size) setImmediate(() => ((reading = false), pump()))
          else reading = false
          return
        }
      } catch {
        // the transcript is not there (yet): the next change brings it
      }
      reading = false
    }
    let watcher: fs.FSWatcher | null = null
    try {
      watcher = fs.watch(options.transcriptPath, () => pump())
    } catch {
      // Nothing to watch: the client is told why rather than left waiting.
      ws.close(1011, "the session has no transcript")
      return
    }
    pump()
    let alive = true
    ws.on("pong", () => (alive = true))
    const heartbeat = setInterval(() => {
      if (!alive) return void ws.terminate()
      alive = false
      ws.ping()
    }, options.pingMs)
    heartbeat.unref()
    ws.on("message", (data) => {
      if (options.input === null) {
        ws.close(1008, "this stream is read-only: connect with ?input=1 to type")
        return
      }
      options.input(data.toString()).catch((error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error)
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ error: `not typed: ${reason}` }))
      })
    })
    ws.on("close", () => (clearInterval(heartbeat), watcher?.close()))
    ws.on("error", () => (clearInterval(heartbeat), watcher?.close()))
  })
}

/** Tells every terminal stream client the daemon stops (close 1001). */
export const closeTerminalStreams = (): void => {
  for (const ws of server.clients) ws.close(1001, "the daemon is stopping")
}
