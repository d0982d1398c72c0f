import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { ResultRecord, RunRecord } from "../src/records/recordSchema.js"
import { eventually, exited, git, jq, makeWorkspace } from "./support/workspace.js"

const ws = makeWorkspace({
  verification: { checks: [{ name: "quiet", command: "true" }] }
})
afterAll(() => ws.cleanup())

const dispatch = (bead: string, repo: string, agent: string, ...extra: string[]) =>
  ws.warden("dispatch", bead, "--repo", repo, "--agent", agent, "--wait", ...extra)

/** The records are valid against the schema that ships in config/, and keep the seed's fields. */
const expectValidRecords = (bead: string) => {
  const run = ws.readRun(bead)
  const result = ws.readResult(bead)
  expect(() => Schema.decodeUnknownSync(RunRecord, { onExcessProperty: "error" })(run)).not.toThrow()
  expect(() => Schema.decodeUnknownSync(ResultRecord, { onExcessProperty: "error" })(result)).not.toThrow()
  expect(jq(".schema_version", ws.runFile(bead))).toBe("1")
  expect(run.prompt_hash).toBe(createHash("sha256").update(run.prompt_full).digest("hex"))
  expect(run.prompt).toBe(run.prompt_full.slice(0, 200))
  expect(run.session_name).toBe(`agent-${bead}`)
  expect(run.result_file).toBe(ws.resultFile(bead))
  return { run, result }
}

describe("the session lifecycle with real tmux and scripted agents", () => {
  it("done through `warden signal`: records an operator can jq, a memory line, committed work verified", async () => {
    const repo = ws.makeRepo("repo-signal")
    const out = await dispatch("bd-sig", repo, "demo", "--template", "feature", "--prompt", "SCENARIO: succeed", "--title", "say hello")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(out.stdout).toMatch(/bd-sig {2}#1 {2}running\.working/)
    const { run, result } = expectValidRecords("bd-sig")
    expect(jq("[.status, .outcome, .completion.source, .agent, .profile, .template_name] | @tsv", ws.runFile("bd-sig"))).toBe(
      "done\tdone\tsignal\tdemo\tdemo\tfeature"
    )
    expect(result.reason).toBe("done (signal), verification passed")
    expect(result.will_retry).toBe(false)
    expect(run.final_message).toBe("wrote demo-bd-sig.txt")
    expect(run.attempt_id).toMatch(/^att-[0-9a-f]{16}$/)
    expect(run.completion.detail.payload).toBeNull()
    // The work was committed: verification sees the new commit even with a clean work tree.
    expect(git(repo, "status", "--porcelain").stdout).toBe("")
    expect(jq(".verification | [.overall, .tests, .lint, .ubs] | @tsv", ws.runFile("bd-sig"))).toBe("pass\tskipped\tskipped\tskipped")
    expect(run.verification.new_commits).toEqual([expect.stringMatching(/bd-sig: demo change/)])
    expect(run.verification.diff_stat).toContain("demo-bd-sig.txt")
    // A check that prints nothing is still a result.
    expect(run.verification.checks.find((c: { name: string }) => c.name === "quiet")).toMatchObject({ status: "pass", output_tail: "" })
    expect(run.state_history.map((s: { state: string }) => s.state)).toEqual([
      "queued",
      "preflight",
      "launching",
      "running.working",
      "recording",
      "verifying",
      "cleaning",
      "notifying",
      "remembering",
      "done"
    ])
    expect(run.output_summary).toContain("committing")
    expect(run.output_summary).not.toContain("Pane is dead")
    expect(ws.memory()).toContain(
      "- Bead `bd-sig`: agent=demo, attempt=1/2, status=done, duration=" 
    )
    expect(ws.tmux("has-session", "-t", "=agent-bd-sig").status).not.toBe(0)
    const show = await ws.warden("show", "bd-sig")
    expect(show.status).toBe(0)
    expect(show.stdout).toMatch(/decided by {2}signal at .*: done/)
    expect(show.stdout).toMatch(/\d\d:\d\d:\d\d\.\d{3} {2}#1 {2}verifying/)
  })

  it("done through the status file the agent writes, with its attempt id", async () => {
    const repo = ws.makeRepo("repo-status")
    const command =
      'echo work > work.txt; printf \'{"status":"done","summary":"via file","attempt_id":"%s"}\' "$WARDEN_ATTEMPT" > "$WARDEN_STATUS_FILE.tmp" && mv "$WARDEN_STATUS_FILE.tmp" "$WARDEN_STATUS_FILE"; sleep 60'
    const out = await dispatch("bd-file", repo, "shell", "--command", command, "--prompt", "work")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const { run } = expectValidRecords("bd-file")
    expect(run.completion).toMatchObject({ source: "status-file", kind: "done" })
    expect(run.final_message).toBe("via file")
    // Untracked files count as a change.
    expect(run.verification.checks.find((c: { name: string }) => c.name === "changes")).toMatchObject({ status: "pass" })
    expect(run.verification.diff_stat).toContain("work.txt (untracked)")
  })

  it("done through an output marker on its own line", async () => {
    const repo = ws.makeRepo("repo-marker")
    const out = await dispatch("bd-marker", repo, "shell", "--command", "echo change > m.txt; echo 'not WARDEN_DONE yet'; echo WARDEN_DONE; sleep 60", "--prompt", "x")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const { run } = expectValidRecords("bd-marker")
    expect(run.completion).toMatchObject({ source: "marker", detail: { line: "WARDEN_DONE" } })
  })

  it("done through process exit 0, with the exit code recorded", async () => {
    const repo = ws.makeRepo("repo-exit")
    const out = await dispatch("bd-exit", repo, "shell", "--command", "echo change > e.txt; git add e.txt", "--prompt", "x")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const { run } = expectValidRecords("bd-exit")
    expect(run.completion).toMatchObject({ source: "exit", detail: { exitCode: 0 } })
    expect(run.exit_code).toBe(0)
    // Staged changes count.
    expect(run.verification.checks.find((c: { name: string }) => c.name === "changes").detail).toMatch(/1 uncommitted path/)
  })

  it("done when an interactive agent is back at its idle prompt; the prompt is typed only once it is ready", async () => {
    const repo = ws.makeRepo("repo-idle")
    // A TUI that takes a second to start and refuses input typed before its prompt shows.
    const tui = [
      "sleep 1",
      'if read -t 0.2 -r early; then echo "typed too early: $early"; exit 3; fi',
      "printf 'demo> '",
      "read -r task",
      'echo "working on: $task"',
      "echo 'Coverage: 85%'",
      "echo done > idle.txt",
      "sleep 0.3",
      "printf 'demo> '",
      "sleep 60"
    ].join("; ")
    const out = await dispatch("bd-idle", repo, "shell-tui", "--command", tui, "--prompt", "make idle.txt")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const { run } = expectValidRecords("bd-idle")
    expect(run.completion).toMatchObject({ source: "idle-prompt" })
    expect(run.output_summary).toContain("working on: make idle.txt")
    expect(run.output_summary).not.toContain("typed too early")
  })

  it("a dialog before the agent is ready is waiting-input; once answered, the prompt is typed and the work ends done", async () => {
    const repo = ws.makeRepo("repo-trust")
    const tui = [
      "printf 'Trust this folder? [y/n] '",
      "read -r answer",
      '[ "$answer" = y ] || exit 1',
      "sleep 0.5",
      "printf 'demo> '",
      "read -r task",
      'echo "working on: $task"',
      "echo done > trusted.txt",
      "sleep 0.3",
      "printf 'demo> '",
      "sleep 60"
    ].join("; ")
    const child = ws.start("dispatch", "bd-trust", "--repo", repo, "--agent", "shell-tui", "--command", tui, "--prompt", "make trusted.txt", "--wait")
    await eventually(() => ws.readRun("bd-trust")?.lifecycle_state === "running.waitingInput", 20_000, "waiting-input")
    await eventually(() => { const reason = ws.readResult("bd-trust")?.reason ?? ""; return reason === "waiting for input: Trust this folder? [y/n]" }, 5_000, "the result record caught up")
    expect(fs.existsSync(path.join(repo, "trusted.txt"))).toBe(false)
    const sent = await ws.warden("send", "bd-trust", "y")
    expect(sent.status, sent.stderr).toBe(0)
    expect(await exited(child)).toBe(0)
    const { run } = expectValidRecords("bd-trust")
    expect(run.completion).toMatchObject({ source: "idle-prompt" })
    expect(run.output_summary).toContain("working on: make trusted.txt")
    expect(run.evidence.map((d: { kind: string }) => d.kind)).toEqual(["waiting-input", "resumed", "done", "done"])
  })

  it("an ordinary line ending in %, $ or > is not an idle prompt: the session runs to its deadline", async () => {
    const repo = ws.makeRepo("repo-notidle")
    const tui = "printf 'demo> '; read -r task; echo 'Coverage: 85%'; echo 'cost: 3$'; echo 'next >'; echo 'root@host:~# '; sleep 60"
    const out = await dispatch("bd-notidle", repo, "shell-tui", "--command", tui, "--prompt", "x", "--timeout", "4")
    expect(out.status).toBe(1)
    const { run } = expectValidRecords("bd-notidle")
    expect(run.status).toBe("timeout")
    expect(run.completion).toMatchObject({ source: "deadline", kind: "timeout" })
    // Captured before the kill: the timeout keeps the output summary.
    expect(run.output_summary).toContain("Coverage: 85%")
    expect(run.failure_reason).toBe("timeout")
    expect(ws.tmux("has-session", "-t", "=agent-bd-notidle").status).not.toBe(0)
  })

  it("a dialog is waiting-input (not done, not a stall) until `warden send` answers it", async () => {
    const repo = ws.makeRepo("repo-ask")
    const child = ws.start("dispatch", "bd-ask", "--repo", repo, "--agent", "demo-tui", "--prompt", "SCENARIO: ask", "--stall", "1", "--wait")
    await eventually(() => ws.readRun("bd-ask")?.lifecycle_state === "running.waitingInput", 30_000, "waiting-input")
    // Longer than the stall time: still waiting for input, not stalled.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(ws.readRun("bd-ask").lifecycle_state).toBe("running.waitingInput")
    await eventually(() => { const reason = ws.readResult("bd-ask")?.reason ?? ""; return reason === "waiting for input: Overwrite the existing notes? [y/n]" }, 5_000, "the result record caught up")
    // The hint can be copied as it is: it names this (non-default) workspace and config.
    await eventually(() => child.output().includes("answer with: warden --workspace "), 5_000, "the waiting hint")
    expect(child.output()).toContain(`answer with: warden --workspace ${ws.workspace} --config ${ws.configFile} send bd-ask TEXT`)
    const sent = await ws.warden("send", "bd-ask", "y")
    expect(sent.status, sent.stderr).toBe(0)
    expect(await exited(child)).toBe(0)
    const { run } = expectValidRecords("bd-ask")
    expect(run.status).toBe("done")
    expect(run.evidence.map((d: { kind: string }) => d.kind)).toContain("waiting-input")
    expect(run.evidence.find((d: { kind: string }) => d.kind === "waiting-input").detail.line).toBe("Overwrite the existing notes? [y/n]")
    expect(run.evidence.map((d: { kind: string }) => d.kind)).not.toContain("stalled")
  })

  it("no output for the stall time is `stalled`, kept as evidence, and the deadline still ends it", async () => {
    const repo = ws.makeRepo("repo-stall")
    const out = await dispatch("bd-stall", repo, "shell", "--command", "echo started; sleep 60", "--prompt", "x", "--stall", "1", "--timeout", "3")
    expect(out.status).toBe(1)
    expect(out.stdout).toContain("running.stalled")
    const { run } = expectValidRecords("bd-stall")
    expect(run.status).toBe("timeout")
    expect(run.state_history.map((s: { state: string }) => s.state)).toContain("running.stalled")
    expect(run.evidence.find((d: { kind: string }) => d.kind === "stalled")).toMatchObject({ source: "stall-timer" })
  })

  it("verification gates done: a session that changed nothing fails, and a failing check that prints nothing still records", async () => {
    const repo = ws.makeRepo("repo-noop", { "package.json": JSON.stringify({ name: "x", scripts: { test: "exit 4" } }) })
    const out = await dispatch("bd-noop", repo, "demo", "--prompt", "SCENARIO: noop", "--max-retries", "1")
    expect(out.status).toBe(1)
    const { run, result } = expectValidRecords("bd-noop")
    expect(run.status).toBe("failed")
    expect(run.failure_reason).toBe("verification-failed")
    expect(jq('.verification.checks[] | select(.name == "changes") | .status', ws.runFile("bd-noop"))).toBe("fail")
    expect(jq(".verification.tests", ws.runFile("bd-noop"))).toBe("fail")
    expect(result.reason).toMatch(/^verification failed: tests: `npm test` exited 4; changes: nothing changed/)
  })

  it("`warden verify` re-runs the checks against the commit recorded at dispatch", async () => {
    const out = await ws.warden("verify", "bd-sig", "--json")
    expect(out.status, out.stderr).toBe(0)
    expect(JSON.parse(out.stdout)).toMatchObject({ overall: "pass", new_commits: [expect.stringContaining("bd-sig")] })
    expect((await ws.warden("verify", "bd-noop")).status).toBe(1)
    const unknown = await ws.warden("verify", "bd-never")
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain('no run record for bead "bd-never"')
  })

  it("preflight names every failed check", async () => {
    const notGit = path.join(ws.dir, "plain-dir")
    fs.mkdirSync(notGit, { recursive: true })
    const bad = await ws.warden("preflight", "--bead", "../x", "--repo", notGit, "--agent", "shell", "--command", "true", "--json")
    expect(bad.status).toBe(1)
    const checks = JSON.parse(bad.stdout).checks as Array<{ name: string; ok: boolean; detail: string }>
    const failed = checks.filter((c) => !c.ok).map((c) => c.name)
    expect(failed).toEqual(["bead-id", "repo-is-git"])
    const outside = await ws.warden("preflight", "--bead", "bd-1", "--repo", "/usr", "--agent", "shell", "--command", "true", "--json")
    expect(JSON.parse(outside.stdout).checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name)).toContain("repo-allowed-root")
    const missing = await ws.warden("preflight", "--bead", "bd-1", "--repo", ws.makeRepo("repo-pf"), "--agent", "custom", "--json")
    expect(JSON.parse(missing.stdout).checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name)).toEqual(["custom-command"])
    const unknownAgent = await ws.warden("preflight", "--bead", "bd-1", "--repo", notGit, "--agent", "nope")
    expect(unknownAgent.status).toBe(2)
    expect(unknownAgent.stderr).toContain('unknown agent profile "nope"')
    const badTemplate = await ws.warden("preflight", "--bead", "bd-1", "--repo", notGit, "--agent", "shell", "--command", "true", "--template", "../etc/passwd", "--json")
    expect(JSON.parse(badTemplate.stdout).checks.find((c: { name: string }) => c.name === "template-renders").ok).toBe(false)
  })

  it("a symlink into an allowed root is resolved before the check", async () => {
    const repo = ws.makeRepo("repo-link-target")
    const outsideLink = path.join(ws.dir, "link-to-usr")
    fs.symlinkSync("/usr", outsideLink)
    const viaLink = await ws.warden("preflight", "--bead", "bd-1", "--repo", outsideLink, "--agent", "shell", "--command", "true", "--json")
    const check = JSON.parse(viaLink.stdout).checks.find((c: { name: string }) => c.name === "repo-allowed-root")
    expect(check.ok).toBe(false)
    const ok = await ws.warden("preflight", "--bead", "bd-1", "--repo", repo, "--agent", "shell", "--command", "true", "--json")
    expect(JSON.parse(ok.stdout).ok).toBe(true)
  })
})
