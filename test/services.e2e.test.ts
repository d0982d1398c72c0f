import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { demoServiceScript, eventually, exited, freePort, makeWorkspace } from "./support/workspace.js"


const port = await freePort()
const serviceScript = demoServiceScript
const ws = makeWorkspace({
  services: {
    web: {
      command: process.execPath,
      args: [serviceScript, String(port)],
      health: { http: `http://127.0.0.1:${port}/health`, bodyPattern: "^ok", intervalSeconds: 0.2, timeoutSeconds: 1, unhealthyAfter: 2 },
      restart: { backoffInitialMs: 300, backoffFactor: 2, backoffMaxMs: 2_000, maxRestarts: 3, withinSeconds: 60 },
      stopGraceMs: 1_000
    }
  }
})
afterAll(() => ws.cleanup())

interface ServiceView {
  name: string
  mode: string
  state: string
  pid: number | null
  restarts: number
  last_exit: { code: number | null; signal: string | null } | null
  health: { ok: boolean; detail: string } | null
}

const services = async (): Promise<ServiceView[]> => {
  const listed = await ws.warden("services", "--json")
  if (listed.status !== 0) throw new Error(`warden services failed: ${listed.stderr}`)
  return (JSON.parse(listed.stdout) as { services: ServiceView[] }).services
}
/** Polls `warden services` (through the CLI, as an operator would) until `web` satisfies `condition`. */
const web = async (what: string, condition: (s: ServiceView) => boolean, timeoutMs = 15_000): Promise<ServiceView> => {
  const deadline = Date.now() + timeoutMs
  let last: ServiceView | undefined
  for (;;) {
    last = (await services()).find((s) => s.name === "web")
    if (last !== undefined && condition(last)) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for web ${what}; it is ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
}
const post = (route: string) => fetch(`http://127.0.0.1:${port}${route}`, { method: "POST" }).then((r) => r.status)
const groupOf = (pid: number): number | null => {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[2])
  } catch {
    return null
  }
}
/** Every live process whose process group is `pgid` (a zombie is gone). */
const groupMembers = (pgid: number): number[] =>
  fs
    .readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
        return fields[0] !== "Z" && Number(fields[2]) === pgid
      } catch {
        return false
      }
    })

describe("supervised services (process mode, real processes)", () => {
  it("restarts a crashed service after its backoff, restarts one whose probe fails while its port is open, fails it with one alert past the limit, and stops its group with the daemon", async () => {
    const d = await ws.startDaemon()
    const feed = new WebSocket(`ws://127.0.0.1:${d.port}/v1/feed?topics=services`, { headers: { authorization: `Bearer ${d.token}` } })
    const events: Array<{ type: string; data: any }> = []
    feed.on("message", (data) => events.push(JSON.parse(data.toString())))
    try {
      const first = await web("running and healthy", (s) => s.state === "running.healthy" && s.pid !== null)
      expect(first).toMatchObject({ mode: "process", restarts: 0, health: { ok: true } })
      // Its own process group, and its output in its log.
      expect(groupOf(first.pid!)).toBe(first.pid)
      await eventually(() => fs.existsSync(path.join(ws.workspace, "state", "services", "web.log")) && fs.readFileSync(path.join(ws.workspace, "state", "services", "web.log"), "utf8").includes("listening"), 5_000, "the service's log")

      // A crash: restarted after its backoff, as a new process.
      expect(await post("/crash")).toBe(202)
      const second = await web("restarted after a crash", (s) => s.state === "running.healthy" && s.pid !== first.pid)
      expect(second).toMatchObject({ restarts: 1, last_exit: { code: 1 } })

      // Wedged: the port answers, /health says 500. Not healthy, so restarted (an open port is not health).
      expect(await post("/sick")).toBe(202)
      const third = await web("restarted after failing probes", (s) => s.state === "running.healthy" && s.pid !== second.pid)
      expect(third.restarts).toBe(2)
      expect(groupMembers(second.pid!)).toEqual([])

      // Two more crashes pass the limit (3 restarts within 60 s): failed, with exactly one alert.
      expect(await post("/crash")).toBe(202)
      const fourth = await web("restarted a third time", (s) => s.state === "running.healthy" && s.pid !== third.pid)
      expect(await post("/crash")).toBe(202)
      await web("failed", (s) => s.state === "failed")
      expect(groupMembers(fourth.pid!)).toEqual([])
      await eventually(() => events.some((e) => e.type === "service.alert"), 5_000, "the alert on the feed")
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(events.filter((e) => e.type === "service.alert")).toHaveLength(1)
      expect(events.filter((e) => e.type === "service.state").map((e) => e.data.state)).toContain("backingOff")

      // The operator starts it again.
      const started = await ws.warden("services", "start", "web")
      expect(started.status).toBe(0)
      const fifth = await web("started by the operator", (s) => s.state === "running.healthy")
      // An unknown service is named as such.
      const unknown = await ws.warden("services", "restart", "nope")
      expect(unknown.status).toBe(1)
      expect(unknown.stderr).toMatch(/no service nope; configured: web/)

      // SIGTERM: the daemon stops, and the service's whole group with it.
      d.child.kill("SIGTERM")
      await exited(d.child)
      expect(groupMembers(fifth.pid!)).toEqual([])
      expect(fs.existsSync(path.join(ws.workspace, "state", "services", "web.json"))).toBe(false)
    } finally {
      feed.close()
      if (d.child.exitCode === null && d.child.signalCode === null) {
        d.child.kill("SIGTERM")
        await exited(d.child)
      }
    }
  })

  it("a service a daemon killed with -9 left running is found by its pid and start time and stopped before a new one starts", async () => {
    const d = await ws.startDaemon()
    const before = await web("running", (s) => s.state === "running.healthy" && s.pid !== null)
    d.child.kill("SIGKILL")
    await exited(d.child)
    // Left behind, still serving.
    expect(groupMembers(before.pid!)).not.toEqual([])
    const again = await ws.startDaemon()
    try {
      const after = await web("running under the new daemon", (s) => s.state === "running.healthy" && s.pid !== before.pid)
      expect(groupMembers(before.pid!)).toEqual([])
      expect(after.restarts).toBe(0)
    } finally {
      again.child.kill("SIGTERM")
      await exited(again.child)
    }
  })
})
