import type { InspectionEvent } from "xstate"
import WebSocket from "ws"
import { HIGH_RATE_EVENTS } from "./machineEvents.js"

/** What the daemon's observer hands every inspection event to, when Stately's inspector is configured. */
export interface StatelyInspection {
  readonly inspect: (event: InspectionEvent) => void
  readonly stop: () => void
}

/** Between attempts to reach the inspector's server while it is not there. */
const RECONNECT_MS = 5_000

/**
 * The actor tree's inspection events in `@statelyai/inspect`'s shape (its own `createInspector` converts
 * them), sent to a websocket server such as `@statelyai/inspect/server`'s `createInspectorServer`, from
 * which Stately's inspector shows the machines live. Contexts and event payloads stay out (prompts,
 * screens, operator text): actors, states and event types only; high-rate events are not sent. The
 * transport is the daemon's own: it reconnects while the server is away, keeps at most 200 events for
 * it, and lets the daemon exit (no timer or socket keeps it up once stopped).
 */
export const statelyInspection = async (url: string, log: (message: string, detail?: Record<string, unknown>) => void): Promise<StatelyInspection> => {
  const { createInspector } = await import("@statelyai/inspect")
  let socket: WebSocket | null = null
  let stopped = false
  let timer: NodeJS.Timeout | null = null
  let warned = false
  const waiting: string[] = []
  const connect = () => {
    if (stopped) return
    let ws: WebSocket
    try {
      ws = new WebSocket(url)
    } catch (error) {
      // The config checks the URL; a client that still cannot be made is logged, and the daemon goes on without it.
      log("Stately's inspector cannot be reached: its URL is refused", { url, reason: (error as Error).message })
      return
    }
    socket = ws
    ws.on("open", () => {
      warned = false
      log("sending machine events to Stately's inspector", { url })
      for (const message of waiting.splice(0)) ws.send(message)
    })
    ws.on("error", (error) => {
      if (!warned) log("Stately's inspector is not reachable; trying again every 5 s", { url, reason: error.message })
      warned = true
    })
    ws.on("close", () => {
      socket = null
      if (stopped) return
      timer = setTimeout(connect, RECONNECT_MS)
      timer.unref()
    })
  }
  const adapter = {
    start: connect,
    stop: () => {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      socket?.terminate()
    },
    send: (event: unknown) => {
      let message: string
      try {
        message = JSON.stringify(event)
      } catch {
        // Not serializable (a cycle the sanitizers missed): not sent.
        return
      }
      if (socket !== null && socket.readyState === WebSocket.OPEN) socket.send(message)
      else {
        waiting.push(message)
        if (waiting.length > 200) waiting.shift()
      }
    }
  }
  const inspector = createInspector(adapter, {
    sanitizeContext: () => ({}),
    sanitizeEvent: (event) => ({ type: event.type }),
    filter: (event) => !(event.type === "@xstate.event" && HIGH_RATE_EVENTS.has((event as { event: { type: string } }).event.type))
  })
  inspector.start()
  return { inspect: (event) => inspector.inspect.next?.(event), stop: () => inspector.stop() }
}
