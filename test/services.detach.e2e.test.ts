import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { demoServiceScript, exited, freePort, makeWorkspace } from "./support/workspace.js"

const port = await freePort()
const serviceScript = demoServiceScript
const ws = makeWorkspace({
  services: { kept: { command: process.execPath, args: [serviceScript, String(port)], detach: true, health: { tcp: port, intervalSeconds: 0.2 }, stopGraceMs: 1_000 } }
})
afterAll(() => ws.cleanup())

const kept = async (what: string, condition: (s: { state: string; pid: number | null; restarts: number }) => boolean) => {
  const deadline = Date.now() + 15_000
  for (;;) {
    const listed = await ws.warden("services", "--json")
    const row = listed.status === 0 ? (JSON.parse(listed.stdout) as { services: Array<{ state: string; pid: number | null; restarts: number }> }).services[0] : undefined
    if (row !== undefined && condition(row)) return row
    if (Date.now() > deadline) throw new Error(`timed out waiting for kept ${what}: ${JSON.stringify(row)}`)
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
}
const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z")

describe("a detached service", () => {
  it("outlives a clean daemon stop and is adopted by the next daemon by its pid and start time, not started again", async () => {
    const first = await ws.startDaemon()
    const before = await kept("running", (s) => s.state === "running.healthy" && s.pid !== null)
    first.child.kill("SIGTERM")
    await exited(first.child)
    expect(alive(before.pid!)).toBe(true)
    const second = await ws.startDaemon()
    try {
      const after = await kept("adopted", (s) => s.state === "running.healthy")
      expect(after.pid).toBe(before.pid)
      // Adopted, it is supervised as before: stopped by the operator, its group ends.
      const stopped = await ws.warden("services", "stop", "kept")
      expect(stopped.status).toBe(0)
      await kept("stopped", (s) => s.state === "stopped")
      expect(alive(before.pid!)).toBe(false)
    } finally {
      second.child.kill("SIGTERM")
      await exited(second.child)
    }
  })
})
