import type * as http from "node:http"
import type { Duplex } from "node:stream"

/**
 * Stopping an HTTP server whose websockets are open. `server.close()` waits for every
 * connection, upgraded ones included, and a websocket client need never hang up (a feed
 * or terminal viewer left open would keep a SIGTERMed daemon running forever). So the
 * server keeps the upgraded sockets; on close it says goodbye to its websocket clients
 * (`goodbye`, a close frame), and after `graceMs` ends the sockets still open.
 */
export const closableServer = (server: http.Server) => {
  const upgraded = new Set<Duplex>()
  server.on("upgrade", (_req: http.IncomingMessage, socket: Duplex) => {
    upgraded.add(socket)
    socket.once("close", () => upgraded.delete(socket))
  })
  return {
    close: (goodbye: () => void, graceMs: number): Promise<void> =>
      new Promise((resolve) => {
        const cut = setTimeout(() => {
          for (const socket of upgraded) socket.destroy()
        }, graceMs)
        server.close(() => {
          clearTimeout(cut)
          resolve()
        })
        goodbye()
      })
  }
}
