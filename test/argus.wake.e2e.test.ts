import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/**
 * Argus wakes on important events, not only on its interval: here its interval is an hour, and a session
 * that waits for input longer than `argus.stalledSeconds` brings a cycle at once, which alerts about it;
 * the cycle also observes the failed attempts of the last hour by reason.
 */
const ws = makeWorkspace({ argus: { enabled: true, intervalSeconds: 3600, stalledSeconds: 1 } })
afterAll(() => ws.cleanup())

type Cycle = { observations: { recent_failures: Array<{ reason: string; count: number }> }; decisions: Array<{ action: string; target: string; verdict: string }> }

describe("Argus woken by a stalled session", () => {
  it("runs a cycle when a session has waited for input too long, alerts about it, and observes recent failures", async () => {
    const d = await ws.startDaemon()
    try {
      const repo = ws.makeRepo("repo")
      const failed = await ws.warden("dispatch", "bd-fails", "--repo", repo, "--agent", "shell", "--command", "exit 3", "--prompt", "x", "--wait")
      expect(failed.status).not.toBe(0)
      const asking = await ws.warden("dispatch", "bd-asks", "--repo", repo, "--agent", "shell", "--command", "printf 'Proceed? [y/n] '; read x; echo got $x", "--prompt", "x")
      expect(asking.status).toBe(0)
      const cycles = async (): Promise<Cycle[]> => JSON.parse((await ws.warden("argus", "--json")).stdout).cycles
      // The daemon's own audit file says when the woken cycle is written; then the CLI shows it.
      await eventually(() => fs.existsSync(path.join(ws.workspace, "argus", "decisions.jsonl")), 20_000, "a cycle woken by the waiting session")
      const seen = await cycles()
      const alert = seen.flatMap((c) => c.decisions).find((x) => x.action === "alert" && x.target === "session:bd-asks")
      expect(alert).toMatchObject({ verdict: "done" })
      expect(seen.at(-1)!.observations.recent_failures).toEqual([{ reason: expect.any(String), count: 1 }])
    } finally {
      await ws.warden("cancel", "bd-asks")
      d.child.kill("SIGTERM")
      await exited(d.child)
    }
  }, 60_000)
})
