import * as fs from "node:fs"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { WebSocketServer, type WebSocket } from "ws"
import { writeFileAtomic } from "../records/RecordStore.js"
import { refuseUpgrade } from "./wireGuards.js"

/** The feed's wire format version: every event carries it as `v`. */
export const FEED_VERSION = 1

export type FeedTopic = "sessions" | "records" | "queue" | "daemon" | "services" | "argus" | "machines"
/** The topics of the main stream; `machines` is a stream of its own (see `FeedStreams`). */
export const FEED_TOPICS: ReadonlyArray<FeedTopic> = ["sessions", "records", "queue", "daemon", "services", "argus"]

export interface FeedEvent {
  readonly v: typeof FEED_VERSION
  /** Strictly increasing across the daemon's restarts, even if the window file is lost (a high-water mark is kept beside it). */
  readonly seq: number
  readonly at: string
  readonly topic: FeedTopic
  readonly type: string
  readonly data: unknown
}

export interface FeedOptions {
  /** Where the replay window is kept, so a client can resume across a daemon restart. */
  readonly file: string
  /** The last sequence number handed out, kept beside the window so numbers never go back. */
  readonly highWaterFile: string
  /** How many recent events can be replayed. */
  readonly window: number
  /** A client whose unsent data passes this is disconnected (close 1013), never buffered without bound. */
  readonly maxBufferedBytes: number
  readonly heartbeatMs: number
  /** The topics this stream carries (and a client may ask for); all of them when a client names none. */
  readonly topics?: ReadonlyArray<FeedTopic>
}

interface Client {
  readonly socket: WebSocket
  readonly topics: ReadonlySet<FeedTopic>
  alive: boolean
}

/**
 * The websocket feed: versioned JSON events with sequence numbers, by topic,
 * resumable from a sequence number out of a bounded, persisted window (a
 * `gap` event says when the window no longer reaches back that far).
 */
export class Feed {
  private seq = 0
  /** The highest number the high-water file reserves (see `publish`). */
  private reserved = 0
  private readonly window: FeedEvent[] = []
  private readonly clients = new Set<Client>()
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 })
  private readonly heartbeat: NodeJS.Timeout
  private appended = 0

  constructor(private readonly options: FeedOptions) {
    try {
      const lines = fs.readFileSync(options.file, "utf8").split("\n").filter((line) => line.trim() !== "")
      for (const line of lines.slice(-options.window)) {
        try {
          const event = JSON.parse(line) as FeedEvent
          if (event.v === FEED_VERSION) this.window.push(event)
        } catch {
          // a torn last line after a crash: skipped
        }
      }
      this.seq = this.window[this.window.length - 1]?.seq ?? 0
      // Compacted at start too: otherwise every restart leaves up to a window more behind.
      if (lines.length > options.window) writeFileAtomic(options.file, this.window.map((e) => `${JSON.stringify(e)}\n`).join(""))
    } catch {
      // no window yet
    }
    // The window's last number goes on; numbers already reserved stay reserved. Without a window (the file
    // was lost) the daemon cannot know the last number handed out: it goes on after the reservation (a
    // jump ahead, which a resuming client sees as a gap, never a number twice).
    const reserved = readHighWater(options.highWaterFile)
    if (this.window.length === 0) this.seq = Math.max(this.seq, reserved)
    this.reserved = Math.max(this.seq, reserved)
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs)
    this.heartbeat.unref()
  }

  private get topics(): ReadonlyArray<FeedTopic> {
    return this.options.topics ?? FEED_TOPICS
  }

  get lastSeq(): number {
    return this.seq
  }

  get clientCount(): number {
    return this.clients.size
  }

  publish(topic: FeedTopic, type: string, data: unknown): FeedEvent {
    const event: FeedEvent = { v: FEED_VERSION, seq: ++this.seq, at: new Date().toISOString(), topic, type, data }
    // The mark reserves a window's worth of numbers ahead: written once per window, not once per event.
    if (this.seq > this.reserved) {
      this.reserved = this.seq + this.options.window
      writeHighWater(this.options.highWaterFile, this.reserved)
    }
    this.window.push(event)
    if (this.window.length > this.options.window) this.window.splice(0, this.window.length - this.options.window)
    this.persist(event)
    const text = JSON.stringify(event)
    for (const client of this.clients) if (client.topics.has(topic)) this.deliver(client, text)
    return event
  }

  /** Appends to the window file; now and then rewrites it to the window alone, so it stays bounded too. */
  private persist(event: FeedEvent): void {
    try {
      fs.appendFileSync(this.options.file, `${JSON.stringify(event)}\n`)
      if (++this.appended >= this.options.window) {
        this.appended = 0
        writeFileAtomic(this.options.file, this.window.map((e) => JSON.stringify(e)).join("\n") + "\n")
      }
    } catch {
      // the feed must never stop the daemon; the window in memory still serves
    }
  }

  private deliver(client: Client, text: string): void {
    if (client.socket.readyState !== client.socket.OPEN) return
    if (client.socket.bufferedAmount + text.length > this.options.maxBufferedBytes) {
      client.socket.close(1013, "slow consumer: resume from your last seq")
      client.socket.terminate()
      this.clients.delete(client)
      return
    }
    client.socket.send(text)
  }

  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        client.socket.terminate()
        this.clients.delete(client)
        continue
      }
      client.alive = false
      client.socket.ping()
      this.deliver(client, JSON.stringify({ v: FEED_VERSION, type: "heartbeat", at: new Date().toISOString(), seq: this.seq }))
    }
  }

  /** Takes over an authenticated upgrade request: `?topics=a,b&since=N`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const requested = (url.searchParams.get("topics") ?? this.topics.join(",")).split(",").filter((t) => t !== "")
    const unknown = requested.filter((t) => !this.topics.includes(t as FeedTopic))
    const sinceText = url.searchParams.get("since")
    let since = sinceText === null ? null : Number(sinceText)
    if (requested.length === 0 || unknown.length > 0 || (since !== null && (!Number.isInteger(since) || since < 0))) {
      const reason =
        requested.length === 0
          ? `topics names none: give some of ${this.topics.join(", ")}, or leave it out for all of them`
          : unknown.length > 0
            ? `unknown topics: ${unknown.join(", ")}`
            : "since must be a sequence number"
      refuseUpgrade(socket, 400, reason)
      return
    }
    this.server.handleUpgrade(req, socket, head, (ws) => {
      const client: Client = { socket: ws, topics: new Set(requested as FeedTopic[]), alive: true }
      ws.on("pong", () => (client.alive = true))
      ws.on("close", () => this.clients.delete(client))
      ws.on("error", () => this.clients.delete(client))
      ws.on("message", () => undefined)
      this.deliver(client, JSON.stringify({ v: FEED_VERSION, type: "hello", at: new Date().toISOString(), seq: this.seq, topics: [...client.topics] }))
      if (since !== null && since > this.seq) {
        // The client saw numbers this daemon never handed out (its window and high-water mark were lost, or it
        // talks to another workspace): it must drop what it holds; the whole window follows.
        this.deliver(client, JSON.stringify({ v: FEED_VERSION, type: "reset", at: new Date().toISOString(), seq: this.seq, since }))
        since = 0
      }
      if (since !== null) {
        const oldest = this.window[0]?.seq ?? this.seq + 1
        if (since + 1 < oldest) {
          this.deliver(client, JSON.stringify({ v: FEED_VERSION, type: "gap", at: new Date().toISOString(), seq: this.seq, from: since + 1, to: oldest - 1 }))
        }
        for (const event of this.window) if (event.seq > since && client.topics.has(event.topic)) this.deliver(client, JSON.stringify(event))
      }
      this.clients.add(client)
    })
  }

  close(): void {
    clearInterval(this.heartbeat)
    for (const client of this.clients) client.socket.close(1001, "the daemon is stopping")
    this.clients.clear()
    this.server.close()
  }
}

/** The high-water mark, or 0 when there is none (or it cannot be read: the window's last number then stands). */
const readHighWater = (file: string): number => {
  try {
    const value = Number(fs.readFileSync(file, "utf8").trim())
    return Number.isSafeInteger(value) && value > 0 ? value : 0
  } catch {
    // No mark yet (a first start) or unreadable: the window's last number stands, as documented above.
    return 0
  }
}

/** The highest number reserved, written whole (a lost or truncated window file must not send numbers back). */
const writeHighWater = (file: string, seq: number): void => {
  try {
    writeFileAtomic(file, `${seq}\n`)
  } catch {
    // the feed must never stop the daemon; the window file still carries the numbers
  }
}

/**
 * The daemon's two streams behind one endpoint: the main feed (sessions,
 * records, queue, daemon) and the machine-level events (`?topics=machines`:
 * every actor's states entered and events received), each with its own
 * sequence numbers, window and high-water mark. Apart, the machines' many
 * events never push the operators' events out of the main window, and a
 * client resuming the main feed sees its numbers as before.
 */
export class FeedStreams {
  constructor(
    readonly main: Feed,
    readonly machines: Feed
  ) {}

  get lastSeq(): number {
    return this.main.lastSeq
  }

  get clientCount(): number {
    return this.main.clientCount + this.machines.clientCount
  }

  publish(topic: FeedTopic, type: string, data: unknown): FeedEvent {
    return (topic === "machines" ? this.machines : this.main).publish(topic, type, data)
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const topics = (url.searchParams.get("topics") ?? "").split(",")
    if (!topics.includes("machines")) return this.main.handleUpgrade(req, socket, head, url)
    if (topics.some((t) => t !== "machines" && t !== "")) {
      refuseUpgrade(socket, 400, "machines is a stream of its own (its own seq): connect once with topics=machines, once for the others")
      return
    }
    this.machines.handleUpgrade(req, socket, head, url)
  }

  private closed = false

  /** Tells every client the daemon stops (1001); once: the API's end and the feed's own end both call it. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.main.close()
    this.machines.close()
  }
}
