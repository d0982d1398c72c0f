import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/**
 * A service in systemd mode, through the built daemon, against the stand-in
 * `systemctl` (test/fixtures/systemctl: the real command's output format; no
 * systemd runs here) first on the daemon's PATH.
 */
const fixtures = path.resolve(new URL(".", import.meta.url).pathname, "fixtures")
const standin = fs.mkdtempSync(path.join(os.tmpdir(), "warden-systemctl-"))
fs.mkdirSync(path.join(standin, "units"))
const unitFile = path.join(standin, "units", "gw.service")
const unit = (state: { pid: number; active: string; sub: string; result: string }) =>
  fs.writeFileSync(unitFile, `MainPID=${state.pid}\nResult=${state.result}\nNRestarts=0\nActiveState=${state.active}\nSubState=${state.sub}\n`)
unit({ pid: 4242, active: "active", sub: "running", result: "success" })

const ws = makeWorkspace(
  { services: { gw: { mode: "systemd", unit: "gw.service", restart: { backoffInitialMs: 300, maxRestarts: 3, withinSeconds: 60 } } } },
  { PATH: `${fixtures}:${process.env.PATH}`, SYSTEMCTL_STANDIN_DIR: standin }
)
afterAll(() => {
  ws.cleanup()
  fs.rmSync(standin, { recursive: true, force: true })
})

const gw = async () => {
  const listed = await ws.warden("services", "--json")
  return (JSON.parse(listed.stdout) as { services: Array<{ name: string; state: string; pid: number | null; restarts: number }> }).services[0]!
}
const calls = () => (fs.existsSync(path.join(standin, "calls.log")) ? fs.readFileSync(path.join(standin, "calls.log"), "utf8").trim().split("\n") : [])

describe("a service in systemd mode", () => {
  it("is watched through systemctl show, and a unit that failed is restarted by the policy (systemctl restart), through systemctl with an argv", async () => {
    const d = await ws.startDaemon()
    try {
      let service = await gw()
      const deadline = Date.now() + 10_000
      while (service.state !== "running.healthy" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 150))
        service = await gw()
      }
      expect(service).toMatchObject({ state: "running.healthy", pid: 4242 })
      expect(calls()).toContain("show -p ActiveState,SubState,MainPID,NRestarts,Result gw.service")
      // The unit fails: the watch sees it, and after the backoff the policy restarts it.
      unit({ pid: 0, active: "failed", sub: "failed", result: "exit-code" })
      await eventually(() => calls().includes("restart gw.service"), 15_000, "systemctl restart gw.service")
      let after = await gw()
      const until = Date.now() + 10_000
      while (!(after.state === "running.healthy" && after.restarts === 1) && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 150))
        after = await gw()
      }
      expect(after).toMatchObject({ state: "running.healthy", restarts: 1 })
      expect(after.pid).not.toBe(4242)
      // No shell ever: every call is a plain argv the stand-in logged as such.
      expect(calls().every((line) => /^(show -p ActiveState,SubState,MainPID,NRestarts,Result|start|stop|restart) gw\.service$/.test(line))).toBe(true)
    } finally {
      d.child.kill("SIGTERM")
      await exited(d.child)
    }
    // The daemon's stop leaves a systemd unit alone (systemd runs it, not the daemon).
    expect(calls()).not.toContain("stop gw.service")
  })
})
