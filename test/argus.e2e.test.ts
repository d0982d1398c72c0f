import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/**
 * Argus in the built daemon, deciding by its rules, acting only within its
 * allowlist: of an orphan agent-program process (bash, the `shell` profile's
 * program, carrying a finished attempt's WARDEN_ATTEMPT) and an orphan
 * `sleep` carrying the same, only the former is killed, and only once it has
 * been seen in three cycles and is older than the grace age.
 */
const ws = makeWorkspace({ argus: { enabled: true, intervalSeconds: 0.3, graceSeconds: 2, orphanCycles: 3 } })
afterAll(() => ws.cleanup())

const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z")
  } catch {
    return false
  }
}
const orphan = (command: string, args: string[], workspace = ws.workspace): ChildProcess =>
  spawn(command, args, { detached: true, stdio: "ignore", env: { ...process.env, WARDEN_ATTEMPT: "att-0000000000dead00", WARDEN_WORKSPACE: workspace } })

describe("Argus (rules, the allowlist, real processes)", () => {
  it("kills an orphan agent program only after the cycles and the grace age, never an orphan sleep, and audits every decision", async () => {
    const started = Date.now()
    const agent = orphan("bash", ["-c", "sleep 600; true"])
    const sleeper = orphan("sleep", ["600"])
    // An agent program of another workspace: never this daemon's to judge (a chaos run of the suite found one killed).
    const foreign = orphan("bash", ["-c", "sleep 600; true"], "/tmp/some-other-workspace")
    const d = await ws.startDaemon()
    try {
      const decisions = path.join(ws.workspace, "argus", "decisions.jsonl")
      const kills = () =>
        (fs.existsSync(decisions) ? fs.readFileSync(decisions, "utf8").trim().split("\n") : [])
          .map((line) => JSON.parse(line))
          .filter((d) => d.action === "kill_pid")
      await eventually(() => kills().some((k) => k.target === agent.pid && k.verdict === "done"), 20_000, "Argus to kill the orphan bash")
      await eventually(() => !alive(agent.pid!), 5_000, "the orphan bash gone")
      // Not before its grace age, and seen in three cycles first.
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000)
      const listed = await ws.warden("argus", "--json")
      expect(listed.status).toBe(0)
      const cycles = JSON.parse(listed.stdout).cycles as Array<{ observations: { orphans: Array<{ pid: number; seen_cycles: number }> }; decisions: Array<{ action: string; target: unknown; verdict: string }> }>
      const killing = cycles.find((c) => c.decisions.some((x) => x.action === "kill_pid" && x.target === agent.pid && x.verdict === "done"))
      expect(killing).toBeDefined()
      expect(killing!.observations.orphans.find((o) => o.pid === agent.pid)!.seen_cycles).toBeGreaterThanOrEqual(3)
      // The sleep is not an agent program: never even proposed, still running.
      expect(kills().some((k) => k.target === sleeper.pid)).toBe(false)
      expect(alive(sleeper.pid!)).toBe(true)
      expect(kills().some((k) => k.target === foreign.pid)).toBe(false)
      expect(alive(foreign.pid!)).toBe(true)
      // A cycle on demand, printed with each decision's verdict.
      const once = await ws.warden("argus", "--once")
      expect(once.status).toBe(0)
      expect(once.stdout).toMatch(/memory [\d.]+%\s+disk [\d.]+%\s+load/)
    } finally {
      d.child.kill("SIGTERM")
      await exited(d.child)
      for (const pid of [agent.pid, sleeper.pid, foreign.pid]) {
        try {
          process.kill(-pid!, "SIGKILL")
        } catch {
          // already gone
        }
      }
    }
  })
})
