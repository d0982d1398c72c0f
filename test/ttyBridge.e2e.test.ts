import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { eventually, exited, makeWorkspace, useDaemon } from "./support/workspace.js"

/**
 * The live terminal (`/v1/sessions/:bead/tty`) from the outside: the built
 * daemon, a real tmux, an agent that asks a question, and websocket viewers.
 */
const ws = makeWorkspace()
const daemon = useDaemon(ws)

/** Asks `[y/n]` again and again; each answer goes to answers.txt in its repo. */
const ASKER = `echo agent-says-hello; while true; do printf 'Proceed? [y/n] '; IFS= read -r a; echo "answer=$a" >> answers.txt; echo "got-answer-$a"; done`

const repos = new Map<string, string>()
/** Each agent's window size before any viewer attached. */
const ownSize = new Map<string, string>()
const answers = (bead: string): string => {
  try {
    return fs.readFileSync(path.join(repos.get(bead)!, "answers.txt"), "utf8")
  } catch {
    return ""
  }
}

const startAsker = async (bead: string) => {
  const repo = ws.makeRepo(`repo-${bead}`)
  repos.set(bead, repo)
  const out = await ws.warden("dispatch", bead, "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", ASKER)
  expect(out.status, out.stderr).toBe(0)
  await eventually(() => ws.tmux("capture-pane", "-p", "-t", `=agent-${bead}:`).stdout.includes("Proceed? [y/n]"), 20_000, `${bead} asking`)
  ownSize.set(bead, windowSize(bead))
}

interface Viewer {
  readonly socket: WebSocket
  /** Every byte of the terminal, as text. */
  screen: () => string
  /** The JSON text frames. */
  readonly frames: Array<any>
  readonly closed: Promise<{ code: number; reason: string }>
}

/** Every viewer a test opened, closed after it (a failed test leaves no client to the next one). */
const opened: Array<WebSocket> = []
afterEach(() => {
  for (const socket of opened.splice(0)) socket.terminate()
})

const ttyUrl = (bead: string, query = "") => `${daemon.base.replace("http", "ws")}/v1/sessions/${bead}/tty${query}`

const view = (bead: string, query = "?cols=100&rows=30") =>
  new Promise<Viewer>((resolve, reject) => {
    const socket = new WebSocket(ttyUrl(bead, query), { headers: { authorization: `Bearer ${daemon.token}` } })
    opened.push(socket)
    const chunks: Array<Buffer> = []
    const frames: Array<any> = []
    const closed = new Promise<{ code: number; reason: string }>((done) => socket.on("close", (code, reason) => done({ code, reason: reason.toString() })))
    socket.on("message", (data, binary) => (binary ? chunks.push(data as Buffer) : frames.push(JSON.parse(data.toString()))))
    socket.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    socket.on("error", reject)
    socket.on("open", async () => {
      // Ready once the daemon said hello (its tmux client is attached).
      await eventually(() => frames.some((f) => f.type === "hello"), 10_000, "the hello frame")
      resolve({ socket, frames, closed, screen: () => Buffer.concat(chunks).toString("utf8") })
    })
  })

/** The HTTP status and body a refused upgrade gets. */
const refusedUpgrade = (url: string, headers: Record<string, string>) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.on("open", () => (socket.close(), reject(new Error("the upgrade was accepted"))))
    socket.on("unexpected-response", (_req, res) => {
      let body = ""
      res.on("data", (chunk: Buffer) => (body += chunk.toString()))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
    })
    socket.on("error", () => undefined)
  })

/** The `tmux attach` clients running on this workspace's socket, from /proc. */
const attachClients = (): Array<number> =>
  fs.readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return []
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")
      return args[0]?.endsWith("tmux") && args.includes(ws.socket) && args.some((a) => a.startsWith("attach")) ? [Number(entry)] : []
    } catch {
      return []
    }
  })

const windowSize = (bead: string) => ws.tmux("display-message", "-p", "-t", `=agent-${bead}:`, "#{window_width}x#{window_height}").stdout.trim()
const settle = () => new Promise((resolve) => setTimeout(resolve, 700))

describe("who may open a live terminal", () => {
  it("refuses an upgrade without the token (401) or with a wrong one, and takes it with the token (header or ?token=)", async () => {
    await startAsker("bd-tty-a")
    const none = await refusedUpgrade(ttyUrl("bd-tty-a"), {})
    expect(none.status).toBe(401)
    const wrong = await refusedUpgrade(ttyUrl("bd-tty-a"), { authorization: "Bearer not-the-token" })
    expect(wrong.status).toBe(401)
    const wrongQuery = await refusedUpgrade(ttyUrl("bd-tty-a", "?token=not-the-token"), {})
    expect(wrongQuery.status).toBe(401)
    expect(attachClients()).toEqual([])
    // The same endpoint with the token: a browser's way (no headers on a websocket) and a client's.
    const socket = new WebSocket(ttyUrl("bd-tty-a", `?token=${daemon.token}`))
    opened.push(socket)
    const first = await new Promise<any>((resolve, reject) => {
      socket.once("message", (data) => resolve(JSON.parse(data.toString())))
      socket.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
    expect(first).toMatchObject({ type: "hello", bead: "bd-tty-a", cols: 80, rows: 24 })
    socket.close()
  })

  it("refuses a bead with no live session (404 naming it) and a size out of bounds (422 naming it)", async () => {
    const missing = await refusedUpgrade(ttyUrl("bd-tty-nobody"), { authorization: `Bearer ${daemon.token}` })
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.body).error).toMatch(/bd-tty-nobody has no running session/)
    const huge = await refusedUpgrade(ttyUrl("bd-tty-a", "?cols=9000&rows=0"), { authorization: `Bearer ${daemon.token}` })
    expect(huge.status).toBe(422)
    expect(JSON.parse(huge.body).error).toMatch(/cols must be an integer from 2 to 500; rows must be an integer from 1 to 300/)
  })
})

describe("a viewer", () => {
  it("sees the agent's output", async () => {
    const viewer = await view("bd-tty-a")
    await eventually(() => viewer.screen().includes("agent-says-hello") && viewer.screen().includes("Proceed? [y/n]"), 10_000, "the agent's screen")
    expect(viewer.frames[0]).toMatchObject({ type: "hello", bead: "bd-tty-a", cols: 100, rows: 30, control: null })
    viewer.socket.close()
    await viewer.closed
  })

  it("is resized to its own size only: a 40x15 viewer leaves the agent's window at its size; a bad size is refused, naming it", async () => {
    const before = ownSize.get("bd-tty-a")!
    expect(before).toMatch(/^\d+x\d+$/)
    // An earlier viewer (100x30) came and went: the window is still at its own size.
    expect(windowSize("bd-tty-a")).toBe(before)
    const viewer = await view("bd-tty-a", "?cols=40&rows=15")
    await eventually(() => ws.tmux("list-clients", "-F", "#{client_width}x#{client_height}").stdout.trim() === "40x15", 10_000, "the viewer's client at 40x15")
    expect(windowSize("bd-tty-a")).toBe(before)
    viewer.socket.send(JSON.stringify({ type: "resize", cols: 60, rows: 20 }))
    await eventually(() => ws.tmux("list-clients", "-F", "#{client_width}x#{client_height}").stdout.trim() === "60x20", 10_000, "the viewer's client at 60x20")
    expect(windowSize("bd-tty-a")).toBe(before)
    viewer.socket.send(JSON.stringify({ type: "resize", cols: 1, rows: 301 }))
    await eventually(() => viewer.frames.some((f) => f.type === "error"), 10_000, "the refusal")
    const error = viewer.frames.find((f) => f.type === "error").error as string
    expect(error).toMatch(/cols/)
    expect(error).toMatch(/rows/)
    expect(ws.tmux("list-clients", "-F", "#{client_width}x#{client_height}").stdout.trim()).toBe("60x20")
    viewer.socket.close()
    await viewer.closed
  })

  it("is read-only: its input is refused with an error frame and never typed", async () => {
    const viewer = await view("bd-tty-a")
    viewer.socket.send(JSON.stringify({ type: "input", data: "sneaky\r" }))
    await eventually(() => viewer.frames.some((f) => f.type === "error"), 10_000, "the refusal")
    expect(viewer.frames.find((f) => f.type === "error").error).toMatch(/read-only: nothing was typed/)
    await settle()
    expect(answers("bd-tty-a")).toBe("")
    expect(ws.tmux("capture-pane", "-p", "-t", "=agent-bd-tty-a:").stdout).not.toContain("sneaky")
    viewer.socket.close()
    await viewer.closed
  })

  it("takes control explicitly (logged, on the feed, told to the other viewer), types an answer the agent receives, and gives control back", async () => {
    const feedFrames: Array<any> = []
    const feed = new WebSocket(`${daemon.base.replace("http", "ws")}/v1/feed?topics=sessions`, { headers: { authorization: `Bearer ${daemon.token}` } })
    feed.on("message", (data) => feedFrames.push(JSON.parse(data.toString())))
    await new Promise((resolve) => feed.once("open", resolve))
    const a = await view("bd-tty-a")
    const b = await view("bd-tty-a")
    const aId = a.frames[0].viewer as string
    const bId = b.frames[0].viewer as string
    a.socket.send(JSON.stringify({ type: "control", take: true }))
    await eventually(() => b.frames.some((f) => f.type === "control" && f.by === aId && f.taken === true), 10_000, "the other viewer told")
    // Only one viewer holds control: a second take is refused, naming the holder.
    b.socket.send(JSON.stringify({ type: "control", take: true }))
    await eventually(() => b.frames.some((f) => f.type === "error"), 10_000, "the second take refused")
    expect(b.frames.find((f) => f.type === "error").error).toContain(`viewer ${aId} has control`)
    a.socket.send(JSON.stringify({ type: "input", data: "y\r" }))
    await eventually(() => answers("bd-tty-a").includes("answer=y\n"), 10_000, "the agent's answer")
    await eventually(() => b.screen().includes("got-answer-y"), 10_000, "the answer on the other viewer's screen")
    // Giving control back makes the viewer read-only again.
    a.socket.send(JSON.stringify({ type: "control", take: false }))
    await eventually(() => b.frames.some((f) => f.type === "control" && f.by === aId && f.taken === false), 10_000, "the release told")
    a.socket.send(JSON.stringify({ type: "input", data: "n\r" }))
    await eventually(() => a.frames.some((f) => f.type === "error" && /read-only/.test(f.error)), 10_000, "input refused after release")
    await eventually(
      () => feedFrames.filter((f) => f.type === "terminal.control" && f.topic === "sessions" && f.data.bead === "bd-tty-a" && f.data.viewer === aId).length >= 2,
      10_000,
      "the feed's terminal.control events"
    )
    const logged = fs.readFileSync(path.join(ws.workspace, "state", "warden.log"), "utf8")
    expect(logged).toMatch(/terminal control taken/)
    expect(logged).toContain(aId)
    await settle()
    expect(answers("bd-tty-a")).toBe("answer=y\n")
    expect(bId).not.toBe(aId)
    for (const v of [a, b]) v.socket.close()
    await Promise.all([a.closed, b.closed])
    feed.close()
  })

  it("closing the socket leaves no tmux attach process", async () => {
    const viewer = await view("bd-tty-a")
    await eventually(() => attachClients().length === 1, 10_000, "the viewer's tmux client")
    viewer.socket.close()
    await viewer.closed
    await eventually(() => attachClients().length === 0, 10_000, "no tmux attach left")
    expect(ws.tmux("list-clients").stdout.trim()).toBe("")
  })

  it("the bead's session ending closes its viewers with a reason", async () => {
    await startAsker("bd-tty-end")
    const viewer = await view("bd-tty-end")
    const cancelled = await daemon.api("POST", "/v1/sessions/bd-tty-end/cancel", {})
    expect(cancelled.status, JSON.stringify(cancelled.json)).toBe(202)
    const closed = await viewer.closed
    expect(closed.code).toBe(1000)
    expect(closed.reason).toMatch(/the session ended/)
    await eventually(() => attachClients().length === 0, 10_000, "no tmux attach left")
  })

  it("the daemon's shutdown closes every viewer (1001) and leaves no tmux attach", async () => {
    const viewers = [await view("bd-tty-a"), await view("bd-tty-a", "?cols=50&rows=10")]
    await eventually(() => attachClients().length === 2, 10_000, "two tmux clients")
    daemon.child.kill("SIGTERM")
    const closes = await Promise.all(viewers.map((v) => v.closed))
    for (const closed of closes) expect(closed).toEqual({ code: 1001, reason: "the daemon is stopping" })
    await exited(daemon.child)
    expect(attachClients()).toEqual([])
  })
})
