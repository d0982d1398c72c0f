import * as http from "node:http"
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { cliEntry, eventually, exited, makeWorkspace } from "./support/workspace.js"

/** The daemon's websocket feed and terminal stream, from the outside. */
const ws = makeWorkspace()
afterAll(() => ws.cleanup())

interface Running {
  readonly child: ChildProcess
  readonly port: number
  readonly token: string
}

const startDaemon = async (extra: string[] = []): Promise<Running> => ws.startDaemon(...extra)

const stop = async (d: Running, signal: NodeJS.Signals = "SIGTERM") => {
  d.child.kill(signal)
  await exited(d.child)
}

/** A feed client that keeps every message. */
const connect = (d: Running, query: string, headers: Record<string, string> = { authorization: `Bearer ${d.token}` }) =>
  new Promise<{ socket: WebSocket; messages: any[] }>((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${d.port}/v1/feed${query}`, { headers })
    const messages: any[] = []
    socket.on("message", (data) => messages.push(JSON.parse(data.toString())))
    socket.on("open", () => resolve({ socket, messages }))
    socket.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    socket.on("error", reject)
  })

const dispatch = async (d: Running, bead: string, command: string) => {
  const repo = ws.makeRepo(`repo-${bead}`)
  const response = await fetch(`http://127.0.0.1:${d.port}/v1/dispatch`, {
    method: "POST",
    headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
    body: JSON.stringify({ bead, repo, agent: "shell", command, prompt: "x" })
  })
  expect(response.status).toBe(202)
}

/** The TCP state (hex, as /proc/net/tcp says it: 01 is established) of the daemon's end of a loopback connection. */
const serverSideState = (serverPort: number, clientPort: number): string | null => {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0")
  const local = `0100007F:${hex(serverPort)}`
  const remote = `0100007F:${hex(clientPort)}`
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields[1] === local && fields[2] === remote) return fields[3] ?? null
  }
  return null
}

const events = (messages: any[]) => messages.filter((m) => typeof m.seq === "number" && m.topic !== undefined)

describe("the websocket feed", () => {
  it("refuses a client without the token or from a foreign origin", async () => {
    const d = await startDaemon()
    try {
      await expect(connect(d, "", {})).rejects.toThrow("HTTP 401")
      await expect(connect(d, "", { authorization: `Bearer ${d.token}`, origin: "http://evil.example" })).rejects.toThrow("HTTP 403")
      await expect(connect(d, "?topics=nonsense")).rejects.toThrow("HTTP 400")
      await expect(connect(d, "?topics=")).rejects.toThrow("HTTP 400")
    } finally {
      await stop(d)
    }
  })

  it("carries versioned events in sequence; a client resumes from its last seq without a gap, across a kill -9 of the daemon", async () => {
    let d = await startDaemon()
    const first = await connect(d, "?topics=sessions,records,queue")
    await dispatch(d, "bd-feed-1", "echo one > one.txt")
    await eventually(() => events(first.messages).some((e) => e.type === "session.state" && e.data.bead === "bd-feed-1" && e.data.state === "done"), 20_000, "bd-feed-1 done on the feed")
    const seen = events(first.messages)
    expect(first.messages[0]).toMatchObject({ v: 1, type: "hello" })
    expect(seen.every((e) => e.v === 1)).toBe(true)
    const seqs = seen.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(new Set(seqs).size).toBe(seqs.length)
    expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(["queue.enqueued", "queue.admitted", "session.state", "records.written"]))
    const states = seen.filter((e) => e.type === "session.state").map((e) => e.data.state)
    expect(states).toEqual(["queued", "preflight", "launching", "running.working", "recording", "verifying", "cleaning", "notifying", "remembering", "done"])
    const last = seqs[seqs.length - 1]!
    first.socket.close()

    // Missed while away: another bead, then a crash of the daemon itself.
    await dispatch(d, "bd-feed-2", "echo two > two.txt")
    await eventually(() => ws.readRun("bd-feed-2")?.lifecycle_state === "done", 20_000, "bd-feed-2 done")
    await stop(d, "SIGKILL")
    d = await startDaemon()
    const resumed = await connect(d, `?topics=sessions,records,queue&since=${last}`)
    await eventually(() => events(resumed.messages).some((e) => e.data?.bead === "bd-feed-2" && e.data?.state === "done"), 10_000, "the replay")
    expect(resumed.messages.some((m) => m.type === "gap")).toBe(false)
    const replayed = events(resumed.messages)
    expect(replayed[0].seq).toBe(last + 1)
    // Without a gap: consecutive, except for events of topics this client did not ask for.
    expect(replayed.every((e, i) => i === 0 || e.seq > replayed[i - 1].seq)).toBe(true)
    expect(replayed.filter((e) => e.data.bead === "bd-feed-2" && e.type === "session.state").map((e) => e.data.state)).toContain("running.working")
    resumed.socket.close()
    await stop(d)
  })

  it("carries the machines' states and events on a stream of its own, and keeps each bead's machine history for replay", async () => {
    const d = await startDaemon()
    try {
      await expect(connect(d, "?topics=machines,sessions")).rejects.toThrow("HTTP 400")
      const machines = await connect(d, "?topics=machines")
      const main = await connect(d, "")
      await dispatch(d, "bd-machines", "echo m > m.txt")
      const mine = () => events(machines.messages).filter((e) => e.data.actor === "session:bd-machines")
      await eventually(() => mine().some((e) => e.type === "machine.state" && e.data.value === "done"), 20_000, "bd-machines done on the machines stream")
      const states = mine().filter((e) => e.type === "machine.state").map((e) => e.data.value)
      // Every state entered, in order, nested states as XState gives them, with the tags the visualizer lights.
      expect(states).toEqual(["queued", "preflight", "launching", { running: "working" }, "recording", "verifying", "cleaning", "notifying", "remembering", "done"])
      const running = mine().find((e) => e.type === "machine.state" && typeof e.data.value === "object")
      expect(running.data.tags).toEqual(["holdsSlot"])
      // Events received, by type, with who sent them; the root's admission shows as its ADMIT.
      const received = mine().filter((e) => e.type === "machine.event").map((e) => e.data.event.type)
      expect(received).toEqual(expect.arrayContaining(["ADMIT", "AGENT.EXITED"]))
      expect(mine().find((e) => e.type === "machine.event" && e.data.event.type === "ADMIT").data.source).toBe("supervisor")
      expect(events(machines.messages).some((e) => e.data.actor === "supervisor" && e.type === "machine.state")).toBe(true)
      // The machines' stream numbers its own events; the main stream's are untouched by them.
      const mainSeqs = events(main.messages).map((e) => e.seq)
      expect(mainSeqs.every((seq, i) => i === 0 || seq === mainSeqs[i - 1] + 1)).toBe(true)
      // The bead's history, kept beside its records, holds the same states.
      const history = fs
        .readFileSync(path.join(ws.workspace, "state", "history", "bd-machines.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
      expect(history.filter((e) => e.kind === "state").map((e) => e.value)).toEqual(states)
      machines.socket.close()
      main.socket.close()
    } finally {
      await stop(d)
    }
  })

  it("says `gap` when the window no longer reaches back to the client's seq", async () => {
    const d = await startDaemon(["--feed-window", "5"])
    try {
      await dispatch(d, "bd-feed-3", "echo three > three.txt")
      await eventually(() => ws.readRun("bd-feed-3")?.status === "done", 20_000, "bd-feed-3 done")
      const client = await connect(d, "?since=0")
      await eventually(() => client.messages.length >= 2, 5_000, "the replay")
      expect(client.messages[1]).toMatchObject({ v: 1, type: "gap", from: 1 })
      // The replay is what the window held when the client came (up to the hello's seq); the bead's last
      // events (notifying, remembering, done come after its record says done) may arrive live after it.
      const hello = client.messages[0]
      expect(events(client.messages).filter((e) => e.seq <= hello.seq).length).toBeLessThanOrEqual(5)
      client.socket.close()
    } finally {
      await stop(d)
    }
  })

  it("SIGTERM stops the daemon while feed and terminal clients stay connected: they are told it stops (1001)", async () => {
    const d = await startDaemon()
    try {
      await dispatch(d, "bd-viewed", "echo viewed; sleep 600")
      await eventually(() => ws.readRun("bd-viewed")?.lifecycle_state === "running.working", 20_000, "running")
      const feed = await connect(d, "")
      const terminal = new WebSocket(`ws://127.0.0.1:${d.port}/v1/sessions/bd-viewed/terminal`, { headers: { authorization: `Bearer ${d.token}` } })
      await new Promise((resolve, reject) => terminal.on("open", resolve).on("error", reject))
      const closeCode = (socket: WebSocket) => new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)))
      const closes = Promise.all([closeCode(feed.socket), closeCode(terminal)])
      // An API client that keeps its connection open between requests (HTTP keep-alive).
      const agent = new http.Agent({ keepAlive: true })
      await new Promise<void>((resolve, reject) =>
        http.get(`http://127.0.0.1:${d.port}/healthz`, { agent }, (res) => (res.resume(), res.on("end", () => resolve()))).on("error", reject)
      )
      // Neither client hangs up by itself: the daemon must end them (server.close() alone waits for them forever).
      const began = Date.now()
      d.child.kill("SIGTERM")
      const still = new Promise((resolve) => setTimeout(() => resolve("still running 15 s after SIGTERM"), 15_000).unref())
      expect(await Promise.race([exited(d.child), still])).toBe(0)
      // Each client was told and let go at once: the daemon never had to wait out its 2 s grace to cut one.
      expect(Date.now() - began).toBeLessThan(2_000)
      expect(await closes).toEqual([1001, 1001])
      agent.destroy()
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) await stop(d, "SIGKILL")
    }
  })

  it("a terminal stream consumer that does not read is cut off; the daemon's memory does not grow with it (it queues at most 1 MiB for the client)", async () => {
    const d = await startDaemon()
    try {
      // The agent prints once the client is connected (else the stream would start at the transcript's tail).
      const gate = path.join(ws.dir, "chatty-go")
      await dispatch(d, "bd-chatty", `while [ ! -f ${gate} ]; do sleep 0.1; done; head -c 30000000 /dev/zero | tr '\\\\0' 'w'; sleep 600`)
      await eventually(() => ws.readRun("bd-chatty")?.lifecycle_state === "running.working", 20_000, "running")
      // A raw websocket handshake; after its answer the client never reads a byte.
      const socket = net.connect(d.port, "127.0.0.1")
      await new Promise((resolve) => socket.once("connect", resolve))
      const answered = new Promise<Buffer>((resolve) => socket.once("data", resolve))
      socket.write(
        `GET /v1/sessions/bd-chatty/terminal HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${d.token}\r\n\r\n`
      )
      expect((await answered).toString("latin1")).toMatch(/^HTTP\/1\.1 101 /)
      socket.pause()
      fs.writeFileSync(gate, "")
      const transcript = () => {
        const file = ws.readRun("bd-chatty")?.transcript_path
        return file ? fs.statSync(file).size : 0
      }
      await eventually(() => transcript() >= 30_000_000, 60_000, "the agent printed 30 MB")
      // Cut off: the daemon's end of this connection is no longer established (it was ended with unsent data).
      const established = () => serverSideState(d.port, socket.localPort!) === "01"
      await eventually(() => !established(), 30_000, "the daemon cutting the client off")
      // What the daemon had queued for the client, and the kernel's buffers: far less than the 30 MB printed.
      // (Not the daemon's RSS: on a loaded machine the uncollected garbage of reading 30 MB of transcript
      // grew it by up to 30 MB while this client got 4 MB.)
      let received = 0
      socket.on("data", (chunk: Buffer) => (received += chunk.length))
      const ended = new Promise((resolve) => socket.once("close", resolve))
      socket.resume()
      await ended
      expect(received).toBeLessThan(15_000_000)
      socket.destroy()
      const cancel = await fetch(`http://127.0.0.1:${d.port}/v1/sessions/bd-chatty/cancel`, {
        method: "POST",
        headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
        body: "{}"
      })
      expect(cancel.status).toBe(202)
    } finally {
      await stop(d)
    }
  }, 120_000)
})
