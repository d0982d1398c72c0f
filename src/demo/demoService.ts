/**
 * The demo's service: a small HTTP server the daemon supervises in process
 * mode. `GET /health` answers `ok`; `POST /crash` makes it exit 1, so the
 * demo can show it restarted after its backoff; `POST /sick` keeps its port
 * open but makes /health answer 500. Not part of Warden itself.
 */
import * as http from "node:http"

const port = Number(process.argv[2] ?? "0")
/** Set by `POST /sick`: the port stays open, /health answers 500 (a wedged service). */
let sick = false
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/health") {
    res.writeHead(sick ? 500 : 200, { "content-type": "text/plain" })
    res.end(sick ? "wedged\n" : "ok\n")
    return
  }
  if (req.method === "POST" && req.url === "/sick") {
    sick = true
    res.writeHead(202)
    res.end()
    return
  }
  if (req.method === "POST" && req.url === "/crash") {
    res.writeHead(202, { "content-type": "text/plain" })
    res.end("crashing\n", () => {
      process.stdout.write("asked to crash: exiting 1\n")
      process.exit(1)
    })
    return
  }
  res.writeHead(404)
  res.end()
})
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`demo service listening on 127.0.0.1:${typeof address === "object" && address !== null ? address.port : port}\n`)
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
