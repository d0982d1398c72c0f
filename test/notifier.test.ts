import { createHmac, timingSafeEqual } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { ProcessesLive } from "../src/processes/Processes.js"
import { makeNotifier, Notifier, notifierLayer, type Alert, type NotifierConfig } from "../src/services/Notifier.js"

/**
 * The Notifier against real local servers on 127.0.0.1 (a Telegram Bot API stand-in, a webhook receiver that checks
 * the HMAC signature) and a real stand-in program for the command channel.
 */

const TOKEN = "123456:AAbbCCdd-secret_TOKEN"
const CHAT = "-100777"
const SECRET = "webhook-shared-secret"

interface Received {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

let server: http.Server
let base = ""
let received: Array<Received> = []
/** How many more times /flaky answers 503 before it accepts. */
let flakyFailures = 0

const verified = (body: string, header: string | undefined): boolean => {
  const expected = Buffer.from(`sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`)
  const given = Buffer.from(header ?? "")
  return given.length === expected.length && timingSafeEqual(given, expected)
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      received.push({ url: req.url ?? "", headers: req.headers, body, at: Date.now() })
      const json = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value))
      // Telegram's Bot API: POST /bot<token>/sendMessage with {chat_id, text}.
      const bot = /^\/bot([^/]+)\/sendMessage$/.exec(req.url ?? "")
      if (bot !== null) {
        if (req.method !== "POST") return json(405, { ok: false, error_code: 405, description: "Method Not Allowed" })
        if (bot[1] !== TOKEN) return json(401, { ok: false, error_code: 401, description: "Unauthorized" })
        const message = JSON.parse(body) as { chat_id?: unknown; text?: unknown }
        if (message.chat_id !== CHAT) return json(400, { ok: false, error_code: 400, description: "Bad Request: chat not found" })
        if (typeof message.text !== "string" || message.text === "") return json(400, { ok: false, error_code: 400, description: "Bad Request: message text is empty" })
        return json(200, { ok: true, result: { message_id: 42, chat: { id: Number(CHAT) }, date: 1, text: message.text } })
      }
      if (req.url === "/hook" || req.url === "/flaky") {
        if (!verified(body, req.headers["x-warden-signature"] as string | undefined)) return json(401, { error: "bad signature" })
        if (req.url === "/flaky" && flakyFailures > 0) {
          flakyFailures -= 1
          return json(503, { error: "busy" })
        }
        return json(200, { received: true })
      }
      if (req.url === "/down") return json(503, { error: "down" })
      json(404, { error: "no such route" })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

beforeEach(() => {
  received = []
  flakyFailures = 0
})

const alert = (problem: string, text = `alert about ${problem}`): Alert => ({ problem, text, at: 1_700_000_000_000 })

const telegram = () => ({ baseUrl: base, tokenEnv: "TELEGRAM_BOT_TOKEN", chatEnv: "TELEGRAM_CHAT_ID" })
const webhook = (route: string, attempts = 3, backoffMs = 50) => ({ url: `${base}${route}`, secretEnv: "WARDEN_WEBHOOK_SECRET", attempts, backoffMs })
const goodEnv = { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_CHAT_ID: CHAT, WARDEN_WEBHOOK_SECRET: SECRET, PATH: process.env.PATH }

const notifyOnce = (config: NotifierConfig, env: Record<string, string | undefined>, a: Alert) =>
  Effect.runPromise(makeNotifier(config, env).notify(a))

describe("Notifier: Telegram", () => {
  it("posts {chat_id, text} to /bot<token>/sendMessage and is ok on {ok: true}", async () => {
    const deliveries = await notifyOnce({ telegram: telegram(), dedupMs: 1000 }, goodEnv, alert("p1", "gateway down"))
    expect(deliveries).toEqual([{ channel: "telegram", ok: true, detail: "sent (message 42)" }])
    expect(received).toHaveLength(1)
    expect(received[0]!.url).toBe(`/bot${TOKEN}/sendMessage`)
    expect(received[0]!.headers["content-type"]).toBe("application/json")
    expect(JSON.parse(received[0]!.body)).toEqual({ chat_id: CHAT, text: "gateway down" })
  })

  it("an {ok: false, description} answer is a failed delivery with the description, never the token", async () => {
    const wrongChat = await notifyOnce({ telegram: telegram(), dedupMs: 1000 }, { ...goodEnv, TELEGRAM_CHAT_ID: "999" }, alert("p2"))
    expect(wrongChat).toEqual([{ channel: "telegram", ok: false, detail: "Telegram answered HTTP 400: Bad Request: chat not found" }])
    const wrongToken = await notifyOnce({ telegram: telegram(), dedupMs: 1000 }, { ...goodEnv, TELEGRAM_BOT_TOKEN: "999:WRONG" }, alert("p3"))
    expect(wrongToken).toEqual([{ channel: "telegram", ok: false, detail: "Telegram answered HTTP 401: Unauthorized" }])
  })

  it("a server that cannot be reached is a failed delivery whose detail holds no token", async () => {
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const [delivery] = await notifyOnce(
      { telegram: { ...telegram(), baseUrl: `http://127.0.0.1:${port}` }, dedupMs: 1000 },
      goodEnv,
      alert("p4")
    )
    expect(delivery).toEqual({ channel: "telegram", ok: false, detail: `POST http://127.0.0.1:${port}/bot<redacted>/sendMessage failed: ECONNREFUSED` })
    expect(delivery!.detail).not.toContain(TOKEN)
    expect(delivery!.detail).not.toContain("AAbbCCdd")
  })

  it("a base URL that echoes the path back still never shows the token", async () => {
    const echo = http.createServer((req, res) => res.writeHead(502).end(`upstream error at ${req.url}`))
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve))
    try {
      const [delivery] = await notifyOnce(
        { telegram: { ...telegram(), baseUrl: `http://127.0.0.1:${(echo.address() as AddressInfo).port}` }, dedupMs: 1000 },
        goodEnv,
        alert("p5")
      )
      expect(delivery).toEqual({
        channel: "telegram",
        ok: false,
        detail: "Telegram answered HTTP 502 without {ok: true}: upstream error at /bot<redacted>/sendMessage"
      })
    } finally {
      echo.closeAllConnections()
      await new Promise((resolve) => echo.close(resolve))
    }
  })

  it("a missing token or chat is a failed delivery naming the variable, and nothing is sent", async () => {
    const noToken = await notifyOnce({ telegram: telegram(), dedupMs: 1000 }, { TELEGRAM_CHAT_ID: CHAT }, alert("p6"))
    expect(noToken).toEqual([{ channel: "telegram", ok: false, detail: "the environment variable TELEGRAM_BOT_TOKEN (the bot token) is not set" }])
    const noChat = await notifyOnce(
      { telegram: { ...telegram(), chatEnv: "MY_CHAT" }, dedupMs: 1000 },
      { TELEGRAM_BOT_TOKEN: TOKEN },
      alert("p7")
    )
    expect(noChat).toEqual([{ channel: "telegram", ok: false, detail: "the environment variable MY_CHAT (the chat id) is not set" }])
    expect(received).toEqual([])
  })
})

describe("Notifier: webhook", () => {
  it("posts {problem, text, at} signed with X-Warden-Signature: sha256=<HMAC of the exact body>", async () => {
    const deliveries = await notifyOnce({ webhook: webhook("/hook"), dedupMs: 1000 }, goodEnv, alert("w1", "disk full"))
    expect(deliveries).toEqual([{ channel: "webhook", ok: true, detail: "HTTP 200 after 1 attempt" }])
    expect(received).toHaveLength(1)
    expect(JSON.parse(received[0]!.body)).toEqual({ problem: "w1", text: "disk full", at: 1_700_000_000_000 })
    expect(received[0]!.headers["x-warden-signature"]).toBe(`sha256=${createHmac("sha256", SECRET).update(received[0]!.body).digest("hex")}`)
  })

  it("a wrong secret is rejected 401, reported as failed and not retried", async () => {
    const deliveries = await notifyOnce({ webhook: webhook("/hook"), dedupMs: 1000 }, { ...goodEnv, WARDEN_WEBHOOK_SECRET: "not-the-secret" }, alert("w2"))
    expect(deliveries).toEqual([
      { channel: "webhook", ok: false, detail: `POST ${base}/hook: HTTP 401: {"error":"bad signature"} after 1 attempt (not retried: the receiver refused it)` }
    ])
    expect(received).toHaveLength(1)
  })

  it("503 twice then 200: three attempts, waiting backoffMs and then twice that", async () => {
    flakyFailures = 2
    const deliveries = await notifyOnce({ webhook: webhook("/flaky", 3, 150), dedupMs: 1000 }, goodEnv, alert("w3"))
    expect(deliveries).toEqual([{ channel: "webhook", ok: true, detail: "HTTP 200 after 3 attempts" }])
    expect(received).toHaveLength(3)
    // The same signed body every time.
    expect(new Set(received.map((r) => r.body)).size).toBe(1)
    const [first, second, third] = received.map((r) => r.at)
    // Timers may fire up to a millisecond early; the waits are 150 and 300 ms.
    expect(second! - first!).toBeGreaterThanOrEqual(148)
    expect(third! - second!).toBeGreaterThanOrEqual(298)
  })

  it("a receiver that stays 503 is tried `attempts` times, then reported as failed", async () => {
    const deliveries = await notifyOnce({ webhook: webhook("/down", 3, 20), dedupMs: 1000 }, goodEnv, alert("w4"))
    expect(deliveries).toEqual([{ channel: "webhook", ok: false, detail: `POST ${base}/down: HTTP 503: {"error":"down"} after 3 attempts` }])
    expect(received).toHaveLength(3)
  })

  it("a missing secret is a failed delivery naming the variable, and nothing is sent", async () => {
    const deliveries = await notifyOnce({ webhook: webhook("/hook"), dedupMs: 1000 }, {}, alert("w5"))
    expect(deliveries).toEqual([{ channel: "webhook", ok: false, detail: "the environment variable WARDEN_WEBHOOK_SECRET (the webhook secret) is not set" }])
    expect(received).toEqual([])
  })
})

describe("Notifier: command", () => {
  let dir = ""
  let record = ""
  let program = ""

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-notifier-"))
    record = path.join(dir, "argv.json")
    program = path.join(dir, "openclaw")
    // A stand-in for openclaw: records its argv as JSON; "fail" exits 3 with a message on stderr; "hang" sleeps.
    fs.writeFileSync(
      program,
      [
        `#!${process.execPath}`,
        `const args = process.argv.slice(2)`,
        `require("node:fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify(args))`,
        `if (args.includes("fail")) { process.stderr.write("openclaw: gateway unreachable\\n"); process.exit(3) }`,
        `if (args.includes("hang")) setTimeout(() => {}, 60000)`
      ].join("\n"),
      { mode: 0o755 }
    )
  })

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true })
  })

  beforeEach(() => {
    fs.rmSync(record, { force: true })
  })

  const recorded = () => JSON.parse(fs.readFileSync(record, "utf8")) as Array<string>
  /** The stand-in first on PATH (a function: `dir` is only known once beforeAll has run). */
  const commandEnv = () => ({ PATH: `${dir}:${process.env.PATH}` })

  it("runs the argv with {text} replaced, shell metacharacters passed as one untouched argument", async () => {
    const text = `Agent bd-1 done (12s, claude, attempt 1/3, reason: ok); rm -rf / && echo $HOME "quoted" 'single' \`id\` | cat > /tmp/x $& {text}`
    const deliveries = await notifyOnce(
      { command: { argv: ["openclaw", "message", "send", "{text}", "--tag=[{text}]"], timeoutMs: 5000 }, dedupMs: 1000 },
      commandEnv(),
      alert("c1", text)
    )
    expect(deliveries).toEqual([{ channel: "command", ok: true, detail: "openclaw exited 0" }])
    expect(recorded()).toEqual(["message", "send", text, `--tag=[${text}]`])
  })

  it("a non-zero exit is a failed delivery with the tail of its stderr", async () => {
    const deliveries = await notifyOnce({ command: { argv: ["openclaw", "fail"], timeoutMs: 5000 }, dedupMs: 1000 }, commandEnv(), alert("c2"))
    expect(deliveries).toEqual([{ channel: "command", ok: false, detail: "openclaw exited 3: openclaw: gateway unreachable" }])
  })

  it("a command that outlives timeoutMs is killed and reported", async () => {
    const started = Date.now()
    const deliveries = await notifyOnce({ command: { argv: [program, "hang"], timeoutMs: 300 }, dedupMs: 1000 }, commandEnv(), alert("c3"))
    expect(deliveries).toEqual([{ channel: "command", ok: false, detail: `${program} was killed after 300ms` }])
    expect(Date.now() - started).toBeLessThan(5000)
    expect(recorded()).toEqual(["hang"])
  })

  it("a program that does not exist is a failed delivery, not a crash", async () => {
    const deliveries = await notifyOnce(
      { command: { argv: ["warden-no-such-program", "{text}"], timeoutMs: 5000 }, dedupMs: 1000 },
      commandEnv(),
      alert("c4")
    )
    expect(deliveries).toHaveLength(1)
    expect(deliveries[0]!.ok).toBe(false)
    expect(deliveries[0]!.detail).toMatch(/^warden-no-such-program could not be started: .*ENOENT/)
  })
})

describe("Notifier: dedup and channels together", () => {
  it("the same problem is sent once within dedupMs and again after it (injected clock)", async () => {
    let clock = 1_000_000
    const notifier = makeNotifier({ telegram: telegram(), webhook: webhook("/hook"), dedupMs: 60_000 }, goodEnv, { now: () => clock })
    const sent = [
      { channel: "telegram", ok: true, detail: "sent (message 42)" },
      { channel: "webhook", ok: true, detail: "HTTP 200 after 1 attempt" }
    ]
    const deduplicated = [
      { channel: "telegram", ok: true, detail: "deduplicated" },
      { channel: "webhook", ok: true, detail: "deduplicated" }
    ]
    expect(await Effect.runPromise(notifier.notify(alert("gateway down")))).toEqual(sent)
    clock += 59_999
    expect(await Effect.runPromise(notifier.notify(alert("gateway down")))).toEqual(deduplicated)
    expect(received).toHaveLength(2)
    // Another problem in the same window goes out.
    expect(await Effect.runPromise(notifier.notify(alert("disk full")))).toEqual(sent)
    expect(received).toHaveLength(4)
    clock += 1
    expect(await Effect.runPromise(notifier.notify(alert("gateway down")))).toEqual(sent)
    expect(received).toHaveLength(6)
    expect(received.filter((r) => r.url === "/hook").map((r) => JSON.parse(r.body).problem)).toEqual(["gateway down", "disk full", "gateway down"])
  })

  it("two alerts of one problem at once are sent once", async () => {
    const notifier = makeNotifier({ webhook: webhook("/hook"), dedupMs: 60_000 }, goodEnv)
    const [a, b] = await Effect.runPromise(Effect.all([notifier.notify(alert("twice")), notifier.notify(alert("twice"))], { concurrency: "unbounded" }))
    expect([a![0]!.detail, b![0]!.detail].sort()).toEqual(["HTTP 200 after 1 attempt", "deduplicated"])
    expect(received).toHaveLength(1)
  })

  it("an alert no channel delivered is not deduplicated: the next one is tried again", async () => {
    const notifier = makeNotifier({ telegram: telegram(), dedupMs: 60_000 }, { ...goodEnv, TELEGRAM_CHAT_ID: "999" })
    expect((await Effect.runPromise(notifier.notify(alert("retry me"))))[0]!.ok).toBe(false)
    expect((await Effect.runPromise(notifier.notify(alert("retry me"))))[0]!.detail).toBe("Telegram answered HTTP 400: Bad Request: chat not found")
    expect(received).toHaveLength(2)
  })

  it("no channel configured: an empty list", async () => {
    expect(await notifyOnce({ dedupMs: 1000 }, goodEnv, alert("nothing"))).toEqual([])
  })

  it("notifierLayer gives the service under its tag; one failing channel does not stop the others", async () => {
    const deliveries = await Effect.runPromise(
      Effect.flatMap(Notifier, (notifier) => notifier.notify(alert("layered", "via the layer"))).pipe(
        Effect.provide(notifierLayer({ telegram: telegram(), webhook: webhook("/hook"), command: { argv: ["warden-no-such-program"], timeoutMs: 1000 }, dedupMs: 1000 }, goodEnv)),
        Effect.provide(ProcessesLive)
      )
    )
    expect(deliveries.map((d) => [d.channel, d.ok])).toEqual([
      ["telegram", true],
      ["webhook", true],
      ["command", false]
    ])
    for (const delivery of deliveries) expect(delivery.detail).not.toContain(TOKEN)
  })
})
