import { wsUrl } from "./api.js"
import type { FeedMessage } from "./types.js"

/**
 * One websocket of the daemon's feed (`/v1/feed?topics=...`), kept open: after a
 * drop it reconnects (1 s, doubling up to 15 s) with `since=<the last seq seen>`,
 * so the daemon replays what was missed. A `gap` or `reset` means the replay
 * cannot be trusted to be whole: `onResync` reloads what the page shows.
 */
export class FeedConnection {
  private socket: WebSocket | null = null
  private lastSeq: number | null = null
  private delayMs = 1000
  private closed = false
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly topics: string,
    private readonly handlers: {
      readonly onEvent: (message: FeedMessage) => void
      readonly onResync: () => void
      readonly onStatus: (live: boolean) => void
    }
  ) {}

  open(): void {
    const since = this.lastSeq === null ? "" : `&since=${this.lastSeq}`
    const socket = new WebSocket(wsUrl(`/v1/feed?topics=${this.topics}${since}`))
    this.socket = socket
    socket.onopen = () => {
      this.delayMs = 1000
      this.handlers.onStatus(true)
    }
    socket.onmessage = (message) => {
      let parsed: FeedMessage
      try {
        parsed = JSON.parse(String(message.data)) as FeedMessage
      } catch {
        return
      }
      if (parsed.type === "hello") {
        // A first connection starts from now; a resumed one keeps its own seq.
        if (this.lastSeq === null && typeof parsed.seq === "number") this.lastSeq = parsed.seq
        return
      }
      if (parsed.type === "gap" || parsed.type === "reset") {
        if (parsed.type === "reset" && typeof parsed.seq === "number") this.lastSeq = null
        this.handlers.onResync()
        return
      }
      if (typeof parsed.seq !== "number") return
      if (this.lastSeq !== null && parsed.seq <= this.lastSeq) return
      this.lastSeq = parsed.seq
      this.handlers.onEvent(parsed)
    }
    socket.onclose = () => {
      this.socket = null
      this.handlers.onStatus(false)
      if (this.closed) return
      this.timer = setTimeout(() => this.open(), this.delayMs)
      this.delayMs = Math.min(this.delayMs * 2, 15_000)
    }
  }

  close(): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.socket?.close()
  }
}
