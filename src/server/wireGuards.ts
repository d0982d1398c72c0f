import * as http from "node:http"
import type { Duplex } from "node:stream"

/**
 * What the daemon's HTTP server promises about connections, whatever a local
 * process sends it: every figure here is in the README.
 */
export const WIRE_LIMITS = {
  /** The request line and headers must arrive within this. */
  headersTimeoutMs: 10_000,
  /** The whole request, body included, must arrive within this. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** How often Node checks the two timeouts above. */
  connectionsCheckingIntervalMs: 1_000,
  /** Request line plus headers, at most (larger: 431). */
  maxHeaderBytes: 16 * 1024,
  /** Open websockets (feed and terminal streams together), at most (more: 429). */
  maxWebsockets: 64,
  /** A terminal stream's client that answers no ping within this is dropped (the feed has its own heartbeat). */
  websocketPingMs: 30_000,
  /** At shutdown, connections still open this long after the listener closed are cut. */
  shutdownGraceMs: 2_000
} as const

/** A request target that cannot be parsed is a 400, never a thrown TypeError. */
export const parseTarget = (raw: string | undefined): URL | null => {
  try {
    return new URL(raw ?? "/", "http://localhost")
  } catch {
    // Unparseable: the caller answers 400.
    return null
  }
}

/** A path segment, percent-decoded; null when its percent-encoding is malformed. */
export const decodeSegment = (raw: string): string | null => {
  try {
    return decodeURIComponent(raw)
  } catch {
    // Malformed percent-encoding: the caller answers 400.
    return null
  }
}

/** Answers an upgrade request that is not taken over with a plain HTTP error, then closes the socket. */
export const refuseUpgrade = (socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void => {
  if (socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify({ error: reason })
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("")
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Error"}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
  )
}

/** The status Node's parser error deserves: 431 for oversized headers, 408 for a timeout, else 400. */
const clientErrorStatus = (error: NodeJS.ErrnoException): number => {
  if (error.code === "HPE_HEADER_OVERFLOW") return 431
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT" || error.code === "HPE_HEADERS_TIMEOUT") return 408
  return 400
}

/**
 * Options for `http.createServer`: bounded header size and timeouts, so a
 * silent or slow client cannot hold a connection for ever.
 */
export const serverOptions = (): http.ServerOptions => ({
  headersTimeout: WIRE_LIMITS.headersTimeoutMs,
  requestTimeout: WIRE_LIMITS.requestTimeoutMs,
  keepAliveTimeout: WIRE_LIMITS.keepAliveTimeoutMs,
  connectionsCheckingInterval: WIRE_LIMITS.connectionsCheckingIntervalMs,
  maxHeaderSize: WIRE_LIMITS.maxHeaderBytes
})

/**
 * A malformed request (bad request line, header or chunked encoding; too
 * large; too slow) is answered with a 4xx when the socket can still take it,
 * then closed. Nothing here throws: a hostile local process must not end the
 * daemon.
 */
export const guardClientErrors = (server: http.Server): void => {
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    socket.on("error", () => socket.destroy())
    // A reset connection, or one that can no longer be written, only needs closing.
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy()
      return
    }
    const status = clientErrorStatus(error)
    const body = JSON.stringify({ error: `malformed request: ${error.code ?? error.message}` })
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    )
  })
}

/**
 * Counts open websockets (feed and terminal streams alike): an upgrade past
 * the limit is refused with 429; a slot is given back when its socket closes.
 */
export class WebsocketSlots {
  private readonly sockets = new Set<Duplex>()

  constructor(private readonly limit: number) {}

  /** Takes a slot for this socket, or answers 429 and returns false. */
  take(socket: Duplex): boolean {
    if (this.sockets.size >= this.limit) {
      refuseUpgrade(socket, 429, `at most ${this.limit} websockets may be open at once; close one and try again`, { "retry-after": "5" })
      return false
    }
    this.sockets.add(socket)
    socket.once("close", () => this.sockets.delete(socket))
    return true
  }

  /** Ends every websocket still open (at shutdown, after they were asked to close). */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy()
  }
}
