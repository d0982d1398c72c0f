import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/**
 * The built daemon as a hostile local process meets it: raw TCP with
 * malformed request lines, targets, headers, percent-encodings and bodies,
 * with and without the token, to every route and to the websocket upgrade
 * path. Every answer is a 4xx (or a success for a well-formed request) or a
 * closed connection; never a 5xx, never an exit.
 */

interface Answer {
  /** The status of the first response, or null when the daemon closed without one. */
  readonly status: number | null
  readonly head: string
  readonly body: string
  readonly closed: boolean
}

/**
 * Sends bytes on a fresh connection and reads the first response. A request the
 * parser is still waiting on is half-closed after `graceMs`, so every exchange
 * ends quickly with an answer or a close (a hang fails the test).
 */
const raw = (port: number, data: string | Buffer, graceMs = 800): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    let received = Buffer.alloc(0)
    let settled = false
    const finish = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(halfClose)
      clearTimeout(hang)
      const text = received.toString("latin1")
      const split = text.indexOf("\r\n\r\n")
      const head = split === -1 ? text : text.slice(0, split)
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)
      socket.destroy()
      resolve({ status: status === null ? null : Number(status[1]), head, body: split === -1 ? "" : text.slice(split + 4), closed })
    }
    const complete = () => {
      const text = received.toString("latin1")
      const split = text.indexOf("\r\n\r\n")
      if (split === -1) return false
      const head = text.slice(0, split)
      if (/^HTTP\/1\.1 101/.test(head)) return true
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      return length !== null && Buffer.byteLength(text.slice(split + 4), "latin1") >= Number(length[1])
    }
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk])
      if (complete()) finish(false)
    })
    socket.on("close", () => finish(true))
    socket.on("error", () => finish(true))
    socket.on("connect", () => socket.write(data))
    const halfClose = setTimeout(() => socket.end(), graceMs)
    const hang = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer and no close within ${graceMs + 4000} ms for ${JSON.stringify(data.toString().slice(0, 200))}`))
    }, graceMs + 4000)
  })

const ALLOWED_ORIGIN = "http://dashboard.example"
const ws = makeWorkspace()
let daemon: ChildProcess
let port = 0
let token = ""
let base = ""

const healthy = async () => {
  expect(daemon.exitCode, "the daemon exited").toBeNull()
  const health = await fetch(`${base}/healthz`)
  expect(health.status).toBe(200)
}

/** A request that names its end: the parser reaches a verdict without waiting for more. */
const request = (line: string, headers: ReadonlyArray<string> = [], body = "") =>
  `${line}\r\n${["host: 127.0.0.1", ...headers].join("\r\n")}\r\n\r\n${body}`

const upgradeHeaders = ["connection: Upgrade", "upgrade: websocket", "sec-websocket-version: 13", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ=="]

/** A raw connection that sends `request` and then stays silent: what it is answered, and when the daemon closes it. */
const openSilent = (request: string): { closedAfterMs: Promise<number>; answer: () => string } => {
  const socket = net.connect(port, "127.0.0.1")
  const began = Date.now()
  let answer = ""
  // Read what comes, or the close is never seen (a paused socket does not read the FIN).
  socket.on("data", (chunk) => (answer += chunk.toString()))
  socket.on("error", () => undefined)
  socket.write(request)
  return { closedAfterMs: new Promise((resolve) => socket.on("close", () => resolve(Date.now() - began))), answer: () => answer }
}

/** A slow client started with the suite: it sends half a request line and stays silent. */
let slowloris: { closedAfterMs: Promise<number>; answer: () => string }

beforeAll(async () => {
  const started = await ws.startDaemon("--allow-origin", ALLOWED_ORIGIN)
  daemon = started.child
  port = started.port
  token = started.token
  base = started.base
  slowloris = openSilent("GET /v1/sessions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
})

afterAll(async () => {
  if (daemon.exitCode === null) {
    daemon.kill("SIGTERM")
    await exited(daemon)
  }
  ws.cleanup()
})

describe("requests that used to crash the daemon or answer 500 (issue 12, item 1)", () => {
  it("an upgrade with a malformed request target is a 400, and the daemon stays up", async () => {
    for (const target of ["http://[", "http://[::1", "//[/v1/feed"]) {
      const answer = await raw(port, request(`GET ${target} HTTP/1.1`, upgradeHeaders))
      expect(answer.status === null || answer.status === 400, `${target}: ${answer.head}`).toBe(true)
      await healthy()
    }
  })

  it("a malformed percent-encoding in the terminal stream's path is a 400, with or without the token", async () => {
    for (const auth of [[], [`authorization: Bearer ${token}`]]) {
      const answer = await raw(port, request("GET /v1/sessions/%E0%A4%A/terminal HTTP/1.1", [...upgradeHeaders, ...auth]))
      expect(answer.status, answer.head).toBe(auth.length === 0 ? 401 : 400)
      await healthy()
    }
  })

  it("a malformed percent-encoding or target on a plain route is a 400, not a 500", async () => {
    for (const line of ["GET /v1/sessions/%E0%A4%A HTTP/1.1", "POST /v1/sessions/%ZZ/cancel HTTP/1.1", "GET http://[ HTTP/1.1"]) {
      const answer = await raw(port, request(line, [`authorization: Bearer ${token}`, "content-length: 0", "connection: close"]))
      expect(answer.status, `${line}: ${answer.head}\n${answer.body}`).toBe(400)
      await healthy()
    }
  })
})

describe("raw-socket fuzz: every route and the upgrade path, with and without the token", () => {
  const routes = [
    "/healthz",
    "/metrics",
    "/v1/dispatch",
    "/v1/drain",
    "/v1/sessions",
    "/v1/queue",
    "/v1/feed",
    "/v1/sessions/bd-x",
    "/v1/sessions/bd-x/cancel",
    "/v1/sessions/bd-x/retry",
    "/v1/sessions/bd-x/signal",
    "/v1/sessions/bd-x/input",
    "/v1/sessions/bd-x/terminal",
    "/v1/sessions/bd-x/tty",
    "/nothing"
  ]
  const methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "CONNECT", "TRACE", "G\u00e9T", "", "get", "GET GET"]
  const percent = fc.constantFrom("%", "%E0%A4%A", "%ZZ", "%00", "%2F..%2F", "%C0%AF", "%FF%FE", "%25", "%u0041", "%F0%9F", "%0d%0a")
  const junk = fc.string({ unit: "binary", maxLength: 12 }).map((s) => s.replace(/[\r\n ]/g, ""))
  const target = fc.oneof(
    fc.tuple(fc.constantFrom(...routes), fc.option(fc.tuple(percent, junk), { nil: undefined })).map(([route, extra]) =>
      extra === undefined ? route : route.replace("bd-x", `bd${extra[0]}${extra[1]}`).replace(/^\/(nothing|healthz|metrics)$/, `/$1${extra[0]}`)
    ),
    fc.constantFrom("http://[", "http://[::1", "//", "*", "/%", "?token=%", "/v1/feed?since=-1", "/v1/feed?since=1e99", "/v1/feed?topics=%FF", "http://x@/v1/sessions", "/v1/sessions/" + "a".repeat(3000)),
    junk.map((s) => `/${s}`)
  )
  const version = fc.constantFrom("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/9.9", "HTTP/1.1 extra", "", "http/1.1")
  const header = fc.oneof(
    fc.constantFrom(
      "content-length: -1",
      "content-length: 5, 6",
      "content-length: 99999999999999999999",
      "transfer-encoding: chunked",
      "transfer-encoding: gzip, chunked",
      "transfer-encoding: chunked, identity",
      "authorization: Bearer",
      "authorization: bearer %00",
      "authorization: Basic Zm9vOmJhcg==",
      "origin: http://evil.example",
      `origin: ${ALLOWED_ORIGIN}`,
      "access-control-request-method: POST",
      "connection: Upgrade",
      "upgrade: websocket",
      "upgrade: h2c",
      "sec-websocket-version: 13",
      "sec-websocket-version: 99",
      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-key: short",
      "x-bad header: 1",
      "no-colon-here",
      " leading-space: 1",
      "x-nul: a\u0000b",
      "x-high: \u00ff\u00fe",
      `x-huge: ${"h".repeat(20 * 1024)}`,
      "host: [",
      "host:"
    ),
    fc.tuple(fc.stringMatching(/^[a-z-]{1,12}$/), junk).map(([name, value]) => `${name}: ${value}`)
  )
  const body = fc.constantFrom(
    "",
    "{",
    '{"on":true}',
    "5\r\nhello\r\n0\r\n\r\n",
    "zz\r\nhello\r\n0\r\n\r\n",
    "5\r\nhel",
    "-1\r\nx\r\n0\r\n\r\n",
    "ffffffffffffffffff\r\nx\r\n",
    "5;ext=\u0000\r\nhello\r\n0\r\n\r\n",
    "0\r\n\r\n",
    "5\r\nhelloXX0\r\n\r\n"
  )

  it("answers 4xx or closes, never 5xx, and stays up (fast-check, fixed seed)", async () => {
    const answers: Array<number | null> = []
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom(...methods),
          target,
          version,
          headers: fc.array(header, { maxLength: 5 }),
          withToken: fc.boolean(),
          upgrade: fc.boolean(),
          body
        }),
        async (r) => {
          const headers = [
            ...r.headers,
            ...(r.withToken ? [`authorization: Bearer ${token}`] : []),
            ...(r.upgrade ? upgradeHeaders : ["connection: close"])
          ]
          const line = [r.method, r.target, r.version].filter((part) => part !== "").join(" ")
          const answer = await raw(port, request(line, headers, r.body), 300)
          answers.push(answer.status)
          // 2xx and 101 only for what is well formed enough to be served; never 5xx.
          expect(answer.status === null || answer.status < 500, `${JSON.stringify(line)} ${JSON.stringify(headers)} -> ${answer.head}\n${answer.body}`).toBe(true)
          expect(daemon.exitCode, "the daemon exited").toBeNull()
        }
      ),
      { seed: 1212, numRuns: 1000, endOnFailure: true }
    )
    await healthy()
    // The fuzz reached the daemon's own code, not only Node's parser.
    expect(answers.filter((s) => s === 401).length).toBeGreaterThan(10)
    expect(answers.filter((s) => s === 400).length).toBeGreaterThan(10)
  }, 40_000)

  it("survives hand-made malformed wire data: bad request lines, header floods, bad chunked encodings, resets", async () => {
    const cases: Array<string | Buffer> = [
      "\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\nhost: x\n\n",
      "\u0000\u0001\u0002\u0003",
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      `GET /${"a".repeat(100 * 1024)} HTTP/1.1\r\nhost: x\r\n\r\n`,
      `GET /v1/sessions HTTP/1.1\r\n${Array.from({ length: 3000 }, (_, i) => `x-h${i}: ${i}`).join("\r\n")}\r\n\r\n`,
      `POST /v1/drain HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n`,
      `POST /v1/drain HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n`,
      `POST /v1/drain HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-length: 10\r\n\r\n{"on"`,
      `GET /v1/feed HTTP/1.1\r\nhost: x\r\n${upgradeHeaders.join("\r\n")}\r\nauthorization: Bearer ${token}\r\nsec-websocket-version: 13\r\n\r\n`,
      `POST /v1/feed HTTP/1.1\r\nhost: x\r\n${upgradeHeaders.join("\r\n")}\r\nauthorization: Bearer ${token}\r\n\r\n`,
      `GET /v1/feed?since=%ZZ HTTP/1.1\r\nhost: x\r\n${upgradeHeaders.join("\r\n")}\r\nauthorization: Bearer ${token}\r\n\r\n`
    ]
    for (const data of cases) {
      const answer = await raw(port, data, 300)
      expect(answer.status === null || answer.status === 101 || (answer.status >= 400 && answer.status < 500), `${String(data).slice(0, 80)} -> ${answer.head}`).toBe(true)
    }
    // Connections reset at every stage of a request and of an upgrade.
    for (const data of [`GET /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n\r\n`, `GET /v1/feed HTTP/1.1\r\nhost: x\r\n${upgradeHeaders.join("\r\n")}\r\nauthorization: Bearer ${token}\r\n\r\n`]) {
      for (let cut = 1; cut < data.length; cut += 7) {
        const socket = net.connect(port, "127.0.0.1")
        socket.on("error", () => undefined)
        await new Promise<void>((resolve) => socket.on("connect", () => resolve()))
        socket.write(data.slice(0, cut))
        socket.resetAndDestroy()
      }
    }
    await healthy()
    expect(daemon.exitCode).toBeNull()
  }, 30_000)
})

describe("the smaller hardening of issue 12, item 15", () => {
  it("matches the Bearer scheme case-insensitively", async () => {
    for (const scheme of ["bearer", "BEARER", "Bearer"]) {
      const response = await fetch(`${base}/v1/queue`, { headers: { authorization: `${scheme} ${token}` } })
      expect(response.status, scheme).toBe(200)
    }
    expect((await fetch(`${base}/v1/queue`, { headers: { authorization: `Bearerx${token}` } })).status).toBe(401)
  })

  it("answers a chunked body over 64 KiB with 413", async () => {
    const chunk = "x".repeat(16 * 1024)
    const chunks = Array.from({ length: 6 }, () => `${(16 * 1024).toString(16)}\r\n${chunk}\r\n`).join("")
    const answer = await raw(
      port,
      `POST /v1/dispatch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunks}`,
      2000
    )
    expect(answer.status, answer.head).toBe(413)
    expect(answer.body).toMatch(/over 65536 bytes/)
    await healthy()
  })

  it("lists a truncated record as unreadable, and says so for its bead instead of 404", async () => {
    const runs = path.join(ws.workspace, "state", "runs")
    fs.mkdirSync(runs, { recursive: true })
    fs.writeFileSync(path.join(runs, "bd-torn.json"), '{"bead": "bd-torn", "status": "do')
    const listed = await fetch(`${base}/v1/sessions`, { headers: { authorization: `Bearer ${token}` } })
    expect(listed.status).toBe(200)
    const json = (await listed.json()) as { sessions: unknown[]; unreadable: Array<{ bead: string; file: string }> }
    expect(json.unreadable).toEqual([{ bead: "bd-torn", file: path.join(runs, "bd-torn.json"), unreadable: true }])
    const shown = await fetch(`${base}/v1/sessions/bd-torn`, { headers: { authorization: `Bearer ${token}` } })
    expect(shown.status).toBe(409)
    expect(((await shown.json()) as { error: string }).error).toMatch(/bd-torn\.json of bd-torn is unreadable/)
    fs.rmSync(path.join(runs, "bd-torn.json"))
  })

  it("answers CORS for an allowed origin only: the preflight without the token, then Access-Control-Allow-Origin", async () => {
    const preflight = await fetch(`${base}/v1/dispatch`, {
      method: "OPTIONS",
      headers: { origin: ALLOWED_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" }
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN)
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/authorization/)
    expect(preflight.headers.get("access-control-allow-methods")).toMatch(/POST/)
    const allowed = await fetch(`${base}/v1/queue`, { headers: { origin: ALLOWED_ORIGIN, authorization: `Bearer ${token}` } })
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN)
    const foreign = await fetch(`${base}/v1/dispatch`, { method: "OPTIONS", headers: { origin: "http://evil.example", "access-control-request-method": "POST" } })
    expect(foreign.status).toBe(403)
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull()
    const noOrigin = await fetch(`${base}/v1/queue`, { headers: { authorization: `Bearer ${token}` } })
    expect(noOrigin.headers.get("access-control-allow-origin")).toBeNull()
  })

  it("refuses a websocket past the limit (64, feed and terminal together) with 429", async () => {
    const open: WebSocket[] = []
    const connect = () =>
      new Promise<WebSocket | number>((resolve, reject) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/feed?topics=daemon`, { headers: { authorization: `Bearer ${token}` } })
        socket.on("open", () => resolve(socket))
        socket.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
        socket.on("error", reject)
      })
    try {
      for (let i = 0; i < 64; i++) {
        const socket = await connect()
        expect(socket, `websocket ${i + 1}`).toBeInstanceOf(WebSocket)
        open.push(socket as WebSocket)
      }
      expect(await connect()).toBe(429)
      // A slot comes back when a websocket closes.
      open.pop()!.terminate()
      // The daemon sees the close a moment later: until then the answer is still 429.
      let next = await connect()
      const deadline = Date.now() + 5_000
      while (next === 429 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        next = await connect()
      }
      expect(next).toBeInstanceOf(WebSocket)
      open.push(next as WebSocket)
    } finally {
      for (const socket of open) socket.terminate()
    }
    await healthy()
  })

  it("closes a connection whose headers do not arrive within 10 s (408), and an idle keep-alive one after 5 s", async () => {
    const closedAfter = await slowloris.closedAfterMs
    expect(closedAfter).toBeGreaterThanOrEqual(9_000)
    expect(closedAfter).toBeLessThan(14_000)
    expect(slowloris.answer()).toMatch(/^HTTP\/1\.1 408/)
    const idle = openSilent("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    const idleClosedAfter = await idle.closedAfterMs
    expect(idleClosedAfter).toBeGreaterThanOrEqual(4_500)
    expect(idleClosedAfter).toBeLessThan(8_000)
    expect(idle.answer()).toMatch(/^HTTP\/1\.1 200/)
  }, 20_000)
})

describe("the API token file (issue 12, item 6)", () => {
  const tw = makeWorkspace()
  const tokenFile = path.join(tw.workspace, "state", "api-token")
  afterAll(() => tw.cleanup())

  const refusedWith = async (prepare: () => void, message: RegExp) => {
    fs.mkdirSync(path.dirname(tokenFile), { recursive: true })
    fs.rmSync(tokenFile, { force: true })
    prepare()
    const child = tw.start("daemon", "--port", "0")
    // A daemon that accepted the file would run on: it is stopped, and the test fails.
    const accepted = setTimeout(() => child.kill("SIGKILL"), 15_000)
    const status = await exited(child)
    clearTimeout(accepted)
    expect(status, child.output()).not.toBe(0)
    expect(status, "the daemon started with that token file").not.toBeNull()
    expect(child.output()).toMatch(message)
    expect(fs.existsSync(path.join(tw.workspace, "state", "daemon.json"))).toBe(false)
  }
  const good = "a".repeat(64)

  it("refuses an empty token file, and says to remove it", async () => {
    await refusedWith(() => fs.writeFileSync(tokenFile, "", { mode: 0o600 }), /api-token is empty.*rm .*api-token/s)
  })

  it("refuses a short token", async () => {
    await refusedWith(() => fs.writeFileSync(tokenFile, "abc123\n", { mode: 0o600 }), /holds a token of 6 characters; at least 32/)
  })

  it("refuses a token readable by others, or writable by its group, and says which chmod fixes it", async () => {
    for (const mode of [0o644, 0o604, 0o620, 0o640, 0o660]) {
      await refusedWith(() => {
        fs.writeFileSync(tokenFile, good)
        fs.chmodSync(tokenFile, mode)
      }, new RegExp(`has mode 0${mode.toString(8)}.*chmod 600`, "s"))
    }
  })

  it("refuses a token file not owned by the daemon's user", async () => {
    await refusedWith(() => {
      fs.writeFileSync(tokenFile, good, { mode: 0o600 })
      fs.chownSync(tokenFile, 65534, 65534)
    }, /is owned by uid 65534, not by the daemon's user/)
  })

  it("refuses a symlink in the token's place", async () => {
    const elsewhere = path.join(tw.dir, "elsewhere-token")
    fs.writeFileSync(elsewhere, good, { mode: 0o600 })
    await refusedWith(() => fs.symlinkSync(elsewhere, tokenFile), /is not a regular file/)
  })

  it("accepts 0640 only with an operators' group that owns the file (and creates it so); creates a missing one 0600, whole", async () => {
    const gw = makeWorkspace({ operatorsGroup: "root" })
    try {
      const file = path.join(gw.workspace, "state", "api-token")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, `${good}\n`)
      fs.chmodSync(file, 0o640)
      const started = await gw.startDaemon()
      expect(started.token).toBe(good)
      started.child.kill("SIGTERM")
      await exited(started.child)
      // A token the daemon creates itself is the group's to read from the start.
      fs.rmSync(file)
      const again = await gw.startDaemon()
      expect(fs.statSync(file).mode & 0o777).toBe(0o640)
      expect(fs.statSync(file).gid).toBe(0)
      expect(again.token).toMatch(/^[0-9a-f]{64}$/)
      again.child.kill("SIGTERM")
      await exited(again.child)
    } finally {
      gw.cleanup()
    }
    fs.rmSync(tokenFile, { force: true })
    const started = await tw.startDaemon()
    try {
      expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600)
      expect(started.token).toMatch(/^[0-9a-f]{64}$/)
      // No temporary file left beside it.
      expect(fs.readdirSync(path.dirname(tokenFile)).filter((name) => name.includes("api-token"))).toEqual(["api-token"])
    } finally {
      started.child.kill("SIGTERM")
      await exited(started.child)
    }
  })
})

describe("across restarts: feed numbers, the feed file's bound, drain (issue 12, items 13, 14, 15)", () => {
  const rw = makeWorkspace()
  const feedFile = path.join(rw.workspace, "state", "feed.jsonl")
  afterAll(() => rw.cleanup())

  const feedClient = (p: number, t: string, query: string) =>
    new Promise<{ socket: WebSocket; messages: any[] }>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${p}/v1/feed${query}`, { headers: { authorization: `Bearer ${t}` } })
      const messages: any[] = []
      socket.on("message", (data) => messages.push(JSON.parse(data.toString())))
      socket.on("open", () => resolve({ socket, messages }))
      socket.on("error", reject)
    })
  const stop = async (child: ChildProcess) => {
    child.kill("SIGTERM")
    await exited(child)
  }
  const drain = (b: string, t: string, on: boolean) =>
    fetch(`${b}/v1/drain`, { method: "POST", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, body: JSON.stringify({ on }) })

  it("never hands out a sequence number again after the window file is lost, and resets a client that is ahead", async () => {
    let d = await rw.startDaemon()
    for (let i = 0; i < 5; i++) expect((await drain(d.base, d.token, i % 2 === 0)).status).toBe(200)
    await drain(d.base, d.token, false)
    const before = await feedClient(d.port, d.token, "?since=0")
    const last = await eventually(() => before.messages.find((m) => m.type === "hello")?.seq as number | undefined, 5_000, "hello")
    before.socket.terminate()
    expect(last).toBeGreaterThanOrEqual(7)
    await stop(d.child)
    fs.rmSync(feedFile)
    d = await rw.startDaemon()
    try {
      const resumed = await feedClient(d.port, d.token, `?since=${last}`)
      const ready = await eventually(() => resumed.messages.find((m) => m.type === "daemon.ready"), 5_000, "daemon.ready replayed")
      // Never a number twice: the daemon goes on after the numbers it had reserved, and says what the client missed.
      expect(ready.seq).toBeGreaterThan(last)
      expect(resumed.messages.some((m) => m.type === "reset")).toBe(false)
      if (ready.seq > last + 1) expect(resumed.messages.find((m) => m.type === "gap")).toMatchObject({ from: last + 1, to: ready.seq - 1 })
      resumed.socket.terminate()
      // A client that saw numbers this daemon never handed out is told to start over.
      const ahead = await feedClient(d.port, d.token, `?since=${ready.seq + 5000}`)
      const reset = await eventually(() => ahead.messages.find((m) => m.type === "reset"), 5_000, "a reset event")
      expect(reset).toMatchObject({ since: ready.seq + 5000, seq: ready.seq })
      await eventually(() => ahead.messages.some((m) => m.type === "daemon.ready"), 5_000, "the window after the reset")
      ahead.socket.terminate()
    } finally {
      await stop(d.child)
    }
  })

  it("compacts the feed file to its window at start, so restarts do not grow it", async () => {
    const window = 20
    const lines = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify({ v: 1, seq: 1_000_000 + i, at: new Date().toISOString(), topic: "daemon", type: "filler", data: {} })
    )
    fs.writeFileSync(feedFile, `${lines.join("\n")}\n`)
    for (let restart = 0; restart < 3; restart++) {
      const d = await rw.startDaemon("--feed-window", String(window))
      const count = fs.readFileSync(feedFile, "utf8").split("\n").filter((line) => line !== "").length
      await stop(d.child)
      // The window, plus what was appended since the last compaction (at most a window more).
      expect(count, `after start ${restart + 1}`).toBeLessThanOrEqual(2 * window)
    }
  })

  it("stops within seconds although a feed client and a half-sent request hold connections open", async () => {
    const d = await rw.startDaemon()
    const client = await feedClient(d.port, d.token, "")
    const half = net.connect(d.port, "127.0.0.1")
    half.on("error", () => undefined)
    half.resume()
    half.write("POST /v1/dispatch HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
    await new Promise((resolve) => setTimeout(resolve, 200))
    const began = Date.now()
    d.child.kill("SIGTERM")
    const stopped = await Promise.race([exited(d.child).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8_000))])
    if (!stopped) d.child.kill("SIGKILL")
    client.socket.terminate()
    half.destroy()
    expect(stopped, "the daemon did not stop within 8 s").toBe(true)
    expect(Date.now() - began).toBeLessThan(5_000)
  })

  it("keeps drain mode across a restart", async () => {
    let d = await rw.startDaemon()
    expect((await drain(d.base, d.token, true)).status).toBe(200)
    await stop(d.child)
    d = await rw.startDaemon()
    try {
      expect(await (await fetch(`${d.base}/healthz`)).json()).toMatchObject({ draining: true })
      expect((await drain(d.base, d.token, false)).status).toBe(200)
    } finally {
      await stop(d.child)
    }
    d = await rw.startDaemon()
    try {
      expect(await (await fetch(`${d.base}/healthz`)).json()).toMatchObject({ draining: false })
    } finally {
      await stop(d.child)
    }
  })
})
