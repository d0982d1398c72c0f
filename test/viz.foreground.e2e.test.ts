import { afterAll, describe, expect, it } from "vitest"
import { makeWorkspace } from "./support/workspace.js"

/**
 * A session run in the foreground (`warden dispatch --wait`, no daemon) keeps its machine history as the
 * daemon's do, so `warden viz --session` draws and replays it too (a new user's first session is this one).
 */
const ws = makeWorkspace()
afterAll(() => ws.cleanup())

describe("warden viz --session on a foreground session", () => {
  it("draws and replays a bead run with dispatch --wait and no daemon", async () => {
    const repo = ws.makeRepo("repo")
    const run = await ws.warden("dispatch", "bd-fg", "--repo", repo, "--agent", "shell", "--command", "echo x > x.txt", "--prompt", "x", "--wait")
    expect(run.status, run.stdout + run.stderr).toBe(0)
    const drawn = await ws.warden("viz", "agentSession", "--session", "bd-fg", "--format", "json")
    expect(drawn.status, drawn.stderr).toBe(0)
    const graph = JSON.parse(drawn.stdout) as { session: { current: string[] }; steps: Array<{ states: string[] }> }
    expect(graph.session.current).toContain("agentSession.done")
    expect(graph.steps.some((s) => s.states.includes("agentSession.running.working"))).toBe(true)
    const first = await ws.warden("viz", "agentSession", "--session", "bd-fg", "--at", "1")
    expect(first.status).toBe(0)
    expect(first.stdout).toContain("step 1 of")
  })
})
