import { createHmac } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/**
 * A service that fails (past its restart limit) raises one alert, and the daemon sends it on every
 * configured channel: a local Telegram Bot API stand-in, a webhook receiver that checks the
 * signature, and a command (a stand-in `openclaw` that records its argv).
 */
const received: { telegram: any[]; webhook: any[] } = { telegram: [], webhook: [] }
const TOKEN = "123456:test-token"
const SECRET = "webhook-secret"
const listen = (handler: http.RequestListener) =>
  new Promise<{ server: http.Server; url: string }>((resolve) => {
    const server = http.createServer(handler)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number }
      resolve({ server, url: `http://127.0.0.1:${address.port}` })
    })
  })
const body = (req: http.IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Buffer[] = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })
const telegram = await listen(async (req, res) => {
  const text = await body(req)
  if (req.url !== `/bot${TOKEN}/sendMessage`) {
    res.writeHead(404).end(JSON.stringify({ ok: false, description: "Not Found" }))
    return
  }
  received.telegram.push(JSON.parse(text))
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, result: { message_id: received.telegram.length } }))
})
const webhook = await listen(async (req, res) => {
  const text = await body(req)
  const expected = `sha256=${createHmac("sha256", SECRET).update(text).digest("hex")}`
  if (req.headers["x-warden-signature"] !== expected) {
    res.writeHead(401).end()
    return
  }
  received.webhook.push(JSON.parse(text))
  res.writeHead(204).end()
})
const bin = fs.mkdtempSync(path.join(os.tmpdir(), "warden-alert-bin-"))
const argvLog = path.join(bin, "argv.log")
fs.writeFileSync(path.join(bin, "openclaw"), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> '${argvLog}'\nprintf -- '--\\n' >> '${argvLog}'\n`, { mode: 0o755 })

const ws = makeWorkspace(
  {
    services: { flaky: { command: process.execPath, args: ["-e", "process.exit(1)"], restart: { backoffInitialMs: 100, maxRestarts: 1, withinSeconds: 60 } } },
    // Argus's interval is an hour: a cycle within the test can only come from the service's failure.
    argus: { enabled: true, intervalSeconds: 3600 },
    alerts: {
      telegram: { baseUrl: telegram.url },
      webhook: { url: `${webhook.url}/hook` },
      command: { argv: [path.join(bin, "openclaw"), "message", "send", "{text}"] }
    }
  },
  { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_CHAT_ID: "42", WARDEN_WEBHOOK_SECRET: SECRET }
)
afterAll(() => {
  ws.cleanup()
  telegram.server.close()
  webhook.server.close()
  fs.rmSync(bin, { recursive: true, force: true })
})

describe("alerts", () => {
  it("a failed service's one alert reaches Telegram, the signed webhook and the command, once", async () => {
    const d = await ws.startDaemon()
    try {
      await eventually(() => received.telegram.length > 0 && received.webhook.length > 0 && fs.existsSync(argvLog), 15_000, "the alert on every channel")
      expect(received.telegram[0]).toMatchObject({ chat_id: "42", text: expect.stringMatching(/^warden: service flaky failed: /) })
      expect(received.webhook[0]).toMatchObject({ problem: "service:flaky", text: expect.stringMatching(/service flaky failed/) })
      const argv = fs.readFileSync(argvLog, "utf8").split("\n")
      expect(argv.slice(0, 2)).toEqual(["message", "send"])
      expect(argv[2]).toMatch(/^warden: service flaky failed: /)
      // Once: the service stays failed, and nothing more is sent.
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      expect(received.telegram).toHaveLength(1)
      expect(received.webhook).toHaveLength(1)
      expect(fs.readFileSync(argvLog, "utf8").split("\n").filter((l) => l === "--")).toHaveLength(1)
      // The failure woke Argus at once: its cycle saw the failed service, and its own alert of the same problem was deduplicated.
      const argus = JSON.parse((await ws.warden("argus", "--json")).stdout) as { cycles: Array<{ observations: { services: Array<{ name: string; state: string }> }; decisions: Array<{ action: string; target: string }> }> }
      expect(argus.cycles.length).toBeGreaterThanOrEqual(1)
      expect(argus.cycles.some((c) => c.observations.services.some((s) => s.name === "flaky" && s.state === "failed"))).toBe(true)
      // The token never reaches the log.
      const logFile = path.join(ws.workspace, "state", "warden.log")
      const log = fs.readFileSync(logFile, "utf8")
      expect(log).toContain("service alert")
      expect(log).not.toContain(TOKEN)
    } finally {
      d.child.kill("SIGTERM")
      await exited(d.child)
    }
  })
})
