import * as fs from "node:fs"
import { ManagedRuntime } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { resolveProfile, type ResolvedProfile } from "../src/config/profiles.js"
import type { DispatchSpec } from "../src/sessions/dispatchSpec.js"
import { SessionRunner } from "../src/sessions/runSession.js"
import { testWorld } from "./support/testLayers.js"
import { eventually } from "./support/workspace.js"

/**
 * The whole seam (machine + actors + watcher + observer) on the test layers:
 * in-memory terminals, scripted processes, an in-memory git and record store.
 * The test plays the agent: it prints through the fake terminal and signals
 * through the same files a real agent would.
 */
const setUp = () => {
  const { repo, config, paths, terminals, records, layer } = testWorld("warden-seam-")
  const runtime = ManagedRuntime.make(layer)
  const spec = (bead: string, profile: ResolvedProfile): DispatchSpec => ({
    bead,
    repo,
    profile,
    prompt: { ok: true, text: "SCENARIO: succeed" },
    templateName: null,
    command: null,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    config,
    paths,
    supervisor: { pid: process.pid, procStart: null, host: "test", kind: "foreground", startedAt: Date.now() }
  })
  return { config, terminals, records, runtime, paths, spec }
}

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const step of cleanup) await step()
  cleanup = []
})

describe("the session seam on the test layers", () => {
  it("launches through Terminals with the attempt's environment, ends on the agent's signal, and writes records through RecordStore", async () => {
    const t = setUp()
    cleanup.push(() => t.runtime.dispose())
    const profile = resolveProfile(t.config, "demo")
    if ("error" in profile) throw new Error(profile.error)
    const runner = new SessionRunner(t.spec("bd-seam", profile), t.runtime).start()
    await eventually(() => runner.view().state === "running.working", 10_000, "running")
    const attemptId = runner.view().context.attemptId!
    const created = t.terminals.control.spec("agent-bd-seam")
    expect(created.command).toEqual(["/bin/sh", t.paths.launcherFile("bd-seam", attemptId)])
    expect(created.env).toMatchObject({ WARDEN_BEAD: "bd-seam", WARDEN_ATTEMPT: attemptId, WARDEN_ATTEMPT_NUMBER: "1" })
    expect(fs.readFileSync(t.paths.launcherFile("bd-seam", attemptId), "utf8")).toContain(t.paths.exitFile("bd-seam", attemptId))
    t.terminals.control.setScreen("agent-bd-seam", ["working on it"])
    t.terminals.control.appendTranscript("agent-bd-seam", "working on it\n")
    fs.appendFileSync(
      t.paths.signalsFile("bd-seam"),
      `${JSON.stringify({ bead: "bd-seam", attempt_id: attemptId, status: "done", summary: "all good", at: Date.now() })}\n`
    )
    expect(await runner.finished).toBe("done")
    const run = t.records.runs.get("bd-seam")!
    expect(run).toMatchObject({ status: "done", completion: { source: "signal" }, final_message: "all good", base_commit: "abc123" })
    expect(run.verification).toMatchObject({ overall: "pass", new_commits: ["abc124 did it"] })
    expect(run.output_summary).toBe("working on it")
    // Records were written at every transition, in order, ending with the final one.
    const states = t.records.writes.map((w) => w.run.lifecycle_state)
    expect(states.indexOf("running.working")).toBeLessThan(states.indexOf("verifying"))
    expect(states[states.length - 1]).toBe("done")
    expect([...t.records.memory.values()].flat()).toEqual([expect.stringMatching(/^- Bead `bd-seam`: agent=demo, attempt=1\/2, status=done/)])
    expect(await t.runtime.runPromise(t.terminals.service.exists("agent-bd-seam"))).toBe(false)
  })

  it("sees a dialog on the screen as waiting-input, and the agent's exit file as its exit", async () => {
    const t = setUp()
    cleanup.push(() => t.runtime.dispose())
    const profile = resolveProfile(t.config, "demo", { maxAttempts: 1 })
    if ("error" in profile) throw new Error(profile.error)
    const runner = new SessionRunner(t.spec("bd-dialog", profile), t.runtime).start()
    await eventually(() => runner.view().state === "running.working", 10_000, "running")
    const attemptId = runner.view().context.attemptId!
    t.terminals.control.setScreen("agent-bd-dialog", ["reading", "Delete the old notes? [y/n]"])
    t.terminals.control.appendTranscript("agent-bd-dialog", "Delete the old notes? [y/n]")
    await eventually(() => runner.view().state === "running.waitingInput", 5_000, "waiting-input")
    expect(runner.view().context.waiting?.detail.line).toBe("Delete the old notes? [y/n]")
    t.terminals.control.setScreen("agent-bd-dialog", ["reading", "Delete the old notes? [y/n] y", "deleted"])
    t.terminals.control.appendTranscript("agent-bd-dialog", " y\ndeleted\n")
    await eventually(() => runner.view().state === "running.working", 5_000, "working again")
    // What the launcher writes when the agent exits.
    fs.writeFileSync(t.paths.exitFile("bd-dialog", attemptId), JSON.stringify({ attempt_id: attemptId, exit_code: 0 }))
    expect(await runner.finished).toBe("done")
    expect(t.records.runs.get("bd-dialog")).toMatchObject({ completion: { source: "exit", detail: { exitCode: 0 } }, exit_code: 0 })
  })
})
