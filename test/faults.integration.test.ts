import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, jq, makeWorkspace } from "./support/workspace.js"

const ws = makeWorkspace({
  profiles: {
    // Retries quickly, and retries a failed verification too.
    "shell-retry": {
      command: "bash",
      args: ["-c", "{command}"],
      prompt: { mode: "file" },
      completion: { sources: ["signal", "status-file", "exit"] },
      retry: { maxAttempts: 2, backoffInitialMs: 200, retryOn: ["agent-exited", "agent-failed", "verification-failed", "timeout"] }
    }
  }
})
afterAll(() => ws.cleanup())

describe("the seed's and peers' known faults stay fixed", () => {
  it("fails, retries after a backoff, and succeeds; the first attempt's evidence survives", async () => {
    const repo = ws.makeRepo("repo-retry")
    const out = await ws.warden("dispatch", "bd-retry", "--repo", repo, "--agent", "demo", "--prompt", "SCENARIO: fail-once", "--wait")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(out.stdout).toMatch(/bd-retry {2}#1 {2}backoff {2}retrying in 1 s/)
    expect(out.stdout).toMatch(/bd-retry {2}#2 {2}preflight/)
    const run = ws.readRun("bd-retry")
    expect(jq("[.status, .attempt, .max_retries, .completion.source] | @tsv", ws.runFile("bd-retry"))).toBe("done\t2\t2\texit")
    expect(run.previous_attempts).toHaveLength(1)
    expect(run.previous_attempts[0]).toMatchObject({ attempt: 1, outcome: "failed", failure_reason: "agent-exited", exit_code: 1 })
    expect(run.previous_attempts[0].attempt_id).not.toBe(run.attempt_id)
    expect(run.previous_attempts[0].output_summary).toContain("something went wrong")
    const memory = ws.memory()
    expect(memory).toMatch(/- Bead `bd-retry`: agent=demo, attempt=1\/2, status=failed, duration=\d+s, will_retry=true, reason=agent-exited: exited 1/)
    expect(memory).toMatch(/- Bead `bd-retry`: agent=demo, attempt=2\/2, status=done, duration=\d+s, will_retry=false, reason=done \(exit\)/)
  })

  it("stops when the retries are exhausted", async () => {
    const repo = ws.makeRepo("repo-exhaust")
    const out = await ws.warden("dispatch", "bd-exhaust", "--repo", repo, "--agent", "shell-retry", "--command", "echo broken; exit 3", "--prompt", "x", "--wait")
    expect(out.status).toBe(1)
    expect(jq("[.status, .attempt, .will_retry, .exit_code, .failure_reason] | @tsv", ws.resultFile("bd-exhaust"))).toBe(
      "failed\t2\tfalse\t3\tagent-exited"
    )
  })

  it("a retry ignores the previous attempt's status file and a stale signal, and ends on its own signal", async () => {
    const repo = ws.makeRepo("repo-stale")
    const firstIdFile = path.join(ws.dir, "stale-first-id")
    const go = path.join(ws.dir, "stale-go")
    // Attempt 1 claims done through an unattributed status file but changes nothing, so verification fails and it is retried.
    // Attempt 2 waits for the test's go-ahead, then does the work and signals.
    const command = [
      'if [ "$WARDEN_ATTEMPT_NUMBER" = 1 ]; then',
      `  echo "$WARDEN_ATTEMPT" > ${firstIdFile}`,
      '  echo \'{"status":"done","summary":"first attempt"}\' > "$WARDEN_STATUS_FILE"',
      "  sleep 60",
      "fi",
      `while [ ! -f ${go} ]; do sleep 0.1; done`,
      "echo second > second.txt",
      'warden signal --status done --summary "second attempt"',
      "sleep 60"
    ].join("\n")
    const child = ws.start("dispatch", "bd-stale", "--repo", repo, "--agent", "shell-retry", "--command", command, "--prompt", "x", "--wait")
    await eventually(() => ws.readRun("bd-stale")?.attempt === 2 && ws.readRun("bd-stale").lifecycle_state === "running.working", 30_000, "attempt 2 running")
    const firstId = fs.readFileSync(firstIdFile, "utf8").trim()
    const secondId = ws.readRun("bd-stale").attempt_id
    expect(secondId).not.toBe(firstId)
    // The previous attempt's status file is gone; a late "done" from attempt 1 arrives by both routes.
    expect(fs.existsSync(path.join(ws.workspace, "state", "watch", "bd-stale.status.json"))).toBe(false)
    const stale = await ws.warden("signal", "bd-stale", "--status", "done", "--summary", "stale", "--attempt", firstId)
    expect(stale.stderr).toContain(`attempt ${firstId} is not the current attempt`)
    fs.writeFileSync(
      path.join(ws.workspace, "state", "watch", "bd-stale.status.json"),
      JSON.stringify({ status: "done", summary: "stale file", attempt_id: firstId })
    )
    await eventually(() => ws.readRun("bd-stale")?.ignored_signals.length >= 2, 10_000, "stale signals ignored")
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(ws.readRun("bd-stale").lifecycle_state).toBe("running.working")
    fs.writeFileSync(go, "")
    expect(await exited(child)).toBe(0)
    const run = ws.readRun("bd-stale")
    expect(run.status).toBe("done")
    expect(run.completion).toMatchObject({ source: "signal", detail: { summary: "second attempt" } })
    expect(run.final_message).toBe("second attempt")
    expect(run.previous_attempts[0]).toMatchObject({ failure_reason: "verification-failed", completion: { source: "status-file" } })
    expect(run.ignored_signals.map((s: { reason: string }) => s.reason)).toEqual([
      `for attempt ${firstId}, not the current ${secondId}`,
      `for attempt ${firstId}, not the current ${secondId}`
    ])
  })

  it("a signal for a session that is over is ignored, and says so", async () => {
    const out = await ws.warden("signal", "bd-retry", "--status", "failed", "--attempt", "att-whatever")
    expect(out.status).toBe(0)
    expect(out.stderr).toContain("bd-retry has no running session")
    expect(ws.readRun("bd-retry").status).toBe("done")
    const bad = await ws.warden("signal", "../x", "--status", "done")
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('invalid bead id "../x"')
    // A bead this workspace never saw is refused, and leaves no signal log behind.
    const unknown = await ws.warden("signal", "bd-never-dispatched", "--status", "done")
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("no bead bd-never-dispatched in the workspace")
    expect(fs.existsSync(path.join(ws.workspace, "state", "watch", "bd-never-dispatched.signals.jsonl"))).toBe(false)
  })

  it("kill -9 of a foreground dispatch: ps shows the agent still running in tmux, then finalizes it when the session is gone", async () => {
    const repo = ws.makeRepo("repo-kill")
    const child = ws.start("dispatch", "bd-kill", "--repo", repo, "--agent", "shell", "--command", "echo working; sleep 600", "--prompt", "x", "--wait")
    await eventually(() => ws.readRun("bd-kill")?.lifecycle_state === "running.working", 20_000, "running")
    child.kill("SIGKILL")
    await exited(child)
    const ps = JSON.parse((await ws.warden("ps", "--json")).stdout)
    expect(ps.find((r: { bead: string }) => r.bead === "bd-kill")).toMatchObject({ status: "running", liveness: "unsupervised" })
    expect((await ws.warden("ps")).stdout).toMatch(/bd-kill .*supervisor pid \d+ gone; agent still running in tmux agent-bd-kill/)
    // The agent dies while nobody supervises it.
    expect(ws.tmux("kill-session", "-t", "=agent-bd-kill").status).toBe(0)
    const after = JSON.parse((await ws.warden("ps", "--json")).stdout).find((r: { bead: string }) => r.bead === "bd-kill")
    expect(after).toMatchObject({ status: "failed", liveness: "finished", reconciled: true, failure_reason: "session-lost" })
    expect(jq("[.status, .lifecycle_state] | @tsv", ws.resultFile("bd-kill"))).toBe("failed\tfailed")
    expect(ws.readResult("bd-kill").reason).toMatch(/^session-lost: the supervisor \(pid \d+\) died/)
  })

  it("kill -9 of a foreground dispatch whose agent then finishes: ps says so, and `warden verify` makes it done", async () => {
    const repo = ws.makeRepo("repo-kill2")
    const gate = path.join(ws.dir, "kill2-go")
    const command = `while [ ! -f ${gate} ]; do sleep 0.1; done; echo work > k.txt; git add k.txt`
    const child = ws.start("dispatch", "bd-kill2", "--repo", repo, "--agent", "shell", "--command", command, "--prompt", "x", "--wait")
    await eventually(() => ws.readRun("bd-kill2")?.lifecycle_state === "running.working", 20_000, "running")
    child.kill("SIGKILL")
    await exited(child)
    fs.writeFileSync(gate, "")
    // tmux keeps the dead pane (remain-on-exit): ps must see through it and clean it up.
    // The pane is dead once the launcher has written the exit file and ended (k.txt alone comes before `git add` ends).
    await eventually(() => ws.tmux("list-panes", "-t", "=agent-bd-kill2:", "-F", "#{pane_dead}").stdout.trim() === "1", 10_000, "agent finished")
    const after = JSON.parse((await ws.warden("ps", "--json")).stdout).find((r: { bead: string }) => r.bead === "bd-kill2")
    expect(after).toMatchObject({ status: "failed", failure_reason: "unverified", exit_code: 0 })
    expect(ws.tmux("has-session", "-t", "=agent-bd-kill2").status).not.toBe(0)
    const verify = await ws.warden("verify", "bd-kill2")
    expect(verify.status, verify.stdout + verify.stderr).toBe(0)
    expect(jq("[.status, .outcome, .verification.overall, .lifecycle_state] | @tsv", ws.runFile("bd-kill2"))).toBe("done\tdone\tpass\tdone")
    // One source of truth: ps's STATUS and STATE columns agree.
    const row = (await ws.warden("ps")).stdout.split("\n").find((line) => line.startsWith("bd-kill2"))
    expect(row).toMatch(/^bd-kill2\s+done\s+done\s/)
  })

  it("`warden cancel` stops a running session through its supervisor and records it as cancelled", async () => {
    const repo = ws.makeRepo("repo-cancel")
    const child = ws.start("dispatch", "bd-cancel", "--repo", repo, "--agent", "shell", "--command", "echo busy; sleep 600", "--prompt", "x", "--wait")
    await eventually(() => ws.readRun("bd-cancel")?.lifecycle_state === "running.working", 20_000, "running")
    const out = await ws.warden("cancel", "bd-cancel")
    expect(out.status, out.stderr).toBe(0)
    expect(await exited(child)).toBe(130)
    expect(jq("[.status, .outcome, .reason, .will_retry] | @tsv", ws.resultFile("bd-cancel"))).toBe("failed\tcancelled\tcancelled\tfalse")
    expect(ws.tmux("has-session", "-t", "=agent-bd-cancel").status).not.toBe(0)
    const again = await ws.warden("cancel", "bd-cancel")
    expect(again.status).toBe(1)
    expect(again.stderr).toContain("bd-cancel is not running (it ended cancelled)")
  })

  it("a cancel while the agent is still starting ends its session too", async () => {
    const repo = ws.makeRepo("repo-starting")
    // A TUI that never shows its ready prompt: the launch waits for it.
    const child = ws.start("dispatch", "bd-starting", "--repo", repo, "--agent", "shell-tui", "--command", "echo booting; sleep 600", "--prompt", "x", "--wait")
    await eventually(() => ws.readRun("bd-starting")?.lifecycle_state === "launching", 20_000, "launching")
    await eventually(() => ws.tmux("has-session", "-t", "=agent-bd-starting").status === 0, 10_000, "session created")
    expect((await ws.warden("cancel", "bd-starting")).status).toBe(0)
    expect(await exited(child)).toBe(130)
    expect(ws.readRun("bd-starting")).toMatchObject({ outcome: "cancelled" })
    await eventually(() => ws.tmux("has-session", "-t", "=agent-bd-starting").status !== 0, 10_000, "session ended")
  })

  it("a nohup job the agent left behind dies with its session", async () => {
    const repo = ws.makeRepo("repo-nohup")
    const pidFile = path.join(ws.dir, "nohup.pid")
    const out = await ws.warden(
      "dispatch", "bd-nohup", "--repo", repo, "--agent", "shell", "--prompt", "x",
      // The subshell exits at once, so the job is reparented: only its session id still ties it to the pane.
      "--command", `(nohup sleep 600 >/dev/null 2>&1 & echo $! > ${pidFile}); echo x > n.txt; echo WARDEN_DONE; sleep 600`,
      "--wait"
    )
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const pid = Number(fs.readFileSync(pidFile, "utf8"))
    await eventually(() => {
      try {
        return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") === true
      } catch {
        return true
      }
    }, 5_000, "the nohup job killed")
  })

  it("kills target the agents' socket and the exact session name, nothing else", async () => {
    // Another tmux server with a same-named session, and a session whose name extends ours.
    const otherSocket = path.join(ws.dir, "other.sock")
    spawnSync("tmux", ["-S", otherSocket, "new-session", "-d", "-s", "agent-bd-target", "sleep 600"])
    ws.tmux("new-session", "-d", "-s", "agent-bd-target0", "sleep 600")
    try {
      const repo = ws.makeRepo("repo-target")
      const out = await ws.warden("dispatch", "bd-target", "--repo", repo, "--agent", "shell", "--command", "echo x > t.txt", "--prompt", "x", "--wait")
      expect(out.status, out.stdout + out.stderr).toBe(0)
      expect(ws.tmux("has-session", "-t", "=agent-bd-target").status).not.toBe(0)
      expect(ws.tmux("has-session", "-t", "=agent-bd-target0").status).toBe(0)
      expect(spawnSync("tmux", ["-S", otherSocket, "has-session", "-t", "=agent-bd-target"]).status).toBe(0)
    } finally {
      spawnSync("tmux", ["-S", otherSocket, "kill-server"])
      ws.tmux("kill-session", "-t", "=agent-bd-target0")
    }
  })

  it("a bead whose session is already live is refused by preflight, and dispatch without --wait says why", async () => {
    ws.tmux("new-session", "-d", "-s", "agent-bd-busy", "sleep 600")
    const repo = ws.makeRepo("repo-busy")
    const out = await ws.warden("dispatch", "bd-busy", "--repo", repo, "--agent", "shell", "--command", "true", "--prompt", "x", "--wait")
    expect(out.status).toBe(1)
    expect(ws.readRun("bd-busy").preflight.find((c: { name: string }) => c.name === "no-live-session")).toMatchObject({ ok: false })
    expect(ws.readResult("bd-busy").reason).toContain("no-live-session: tmux session agent-bd-busy already exists")
    ws.tmux("kill-session", "-t", "=agent-bd-busy")
    const noWait = await ws.warden("dispatch", "bd-nowait", "--repo", repo, "--agent", "shell", "--command", "true", "--prompt", "x")
    expect(noWait.status).toBe(1)
    expect(noWait.stderr).toContain("no warden daemon runs for this workspace")
    expect(ws.readRun("bd-nowait")).toBeNull()
  })
})
