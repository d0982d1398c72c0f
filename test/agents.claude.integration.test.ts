import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { startAnthropicEndpoint, type AnthropicEndpoint, type ClaudeStep } from "./support/anthropicEndpoint.js"
import { cliEntry, eventually, exited, jq, makeWorkspace, type Workspace } from "./support/workspace.js"

/**
 * Warden driving the real Claude Code CLI (test-agents/), headless and in its
 * TUI, against a local scripted Anthropic Messages endpoint.
 */
const agentsBin = path.resolve(new URL("../test-agents/node_modules/.bin", import.meta.url).pathname)
const API_KEY = "sk-ant-test-0123456789abcdefghij"

let endpoint: AnthropicEndpoint | null = null
let ws: Workspace | null = null
afterEach(async () => {
  ws?.cleanup()
  await endpoint?.close()
  ws = null
  endpoint = null
})

const setUp = async (script: ReadonlyArray<ClaudeStep>, options: { trust?: boolean } = {}) => {
  if (!fs.existsSync(path.join(agentsBin, "claude"))) throw new Error("claude is not installed: run `npm run test-agents`")
  endpoint = await startAnthropicEndpoint(script)
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "warden-claude-home-"))
  ws = makeWorkspace(
    {},
    {
      PATH: `${agentsBin}:${process.env.PATH}`,
      HOME: home,
      ANTHROPIC_BASE_URL: endpoint.url,
      ANTHROPIC_API_KEY: API_KEY,
      // This machine sets IS_SANDBOX itself; the profile must set it for root on its own.
      IS_SANDBOX: undefined
    }
  )
  const repo = fs.realpathSync(ws.makeRepo("repo"))
  const claudeJson = {
    hasCompletedOnboarding: true,
    customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
    projects: options.trust === false ? {} : { [repo]: { hasTrustDialogAccepted: true } }
  }
  fs.writeFileSync(path.join(home, ".claude.json"), JSON.stringify(claudeJson))
  return { ws, repo, home, endpoint }
}

describe("Claude Code through Warden", () => {
  it("claude -p writes a file with its own tool, ends done, verified, with the result, usage and cost from its stream", async () => {
    const { ws, repo } = await setUp([
      { kind: "tool", name: "Write", input: { file_path: "hello.txt", content: "hello from claude\n" } },
      { kind: "text", text: "wrote hello.txt" }
    ])
    const out = await ws.warden("dispatch", "bd-claude", "--repo", repo, "--agent", "claude", "--template", "feature", "--prompt", "create hello.txt", "--wait")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(fs.readFileSync(path.join(repo, "hello.txt"), "utf8")).toBe("hello from claude\n")
    const run = ws.readRun("bd-claude")
    expect(jq("[.status, .agent, .profile, .completion.source, .verification.overall] | @tsv", ws.runFile("bd-claude"))).toBe(
      "done\tclaude\tclaude\texit\tpass"
    )
    expect(run.final_message).toBe("wrote hello.txt")
    expect(run.usage).toMatchObject({ input_tokens: 240, output_tokens: 60 })
    expect(run.cost_usd).toBeGreaterThan(0)
    expect(ws.readResult("bd-claude")).toMatchObject({ usage: run.usage, cost_usd: run.cost_usd, final_message: "wrote hello.txt" })
  })

  it("claude -p against a model that never answers ends in timeout, with the output summary kept", async () => {
    const { ws, repo } = await setUp([{ kind: "hang" }])
    const out = await ws.warden("dispatch", "bd-hang", "--repo", repo, "--agent", "claude", "--prompt", "do something", "--timeout", "8", "--max-retries", "1", "--wait")
    expect(out.status).toBe(1)
    const run = ws.readRun("bd-hang")
    expect(run.status).toBe("timeout")
    // The last 500 characters of the screen: the tail of claude's stream-json init event.
    expect(run.output_summary).toMatch(/"uuid":"[0-9a-f-]+"/)
    expect(ws.tmux("has-session", "-t", "=agent-bd-hang").status).not.toBe(0)
  })

  it("the TUI: a question is waiting-input through the Stop hook, `warden send` answers it, and the next Stop ends it done", async () => {
    const { ws, repo, endpoint } = await setUp([
      { kind: "tool", name: "Write", input: { file_path: "hello.txt", content: "hi\n" } },
      { kind: "text", text: "I wrote hello.txt. Should I also add a README?" },
      { kind: "tool", name: "Write", input: { file_path: "README.md", content: "# readme\n" } },
      { kind: "text", text: "Added README.md as well." }
    ])
    const pre = await ws.warden("preflight", "--bead", "bd-tui", "--repo", repo, "--agent", "claude-tui", "--json")
    expect(pre.status, pre.stdout).toBe(0)
    expect(JSON.parse(pre.stdout).checks.map((c: { name: string }) => c.name)).toEqual(
      expect.arrayContaining(["cli-version", "claude-onboarding", "claude-folder-trust", "claude-api-key-approved"])
    )
    const child = ws.start("dispatch", "bd-tui", "--repo", repo, "--agent", "claude-tui", "--prompt", "create hello.txt", "--wait")
    const waiting = await eventually(() => {
      const run = ws.readRun("bd-tui")
      return run?.lifecycle_state === "running.waitingInput" ? run : null
    }, 60_000, "waiting-input")
    expect(waiting.evidence.find((d: { kind: string }) => d.kind === "waiting-input")).toMatchObject({
      source: "hook",
      detail: { summary: "I wrote hello.txt. Should I also add a README?" }
    })
    const sent = await ws.warden("send", "bd-tui", "yes please")
    expect(sent.status, sent.stderr).toBe(0)
    expect(await exited(child)).toBe(0)
    const run = ws.readRun("bd-tui")
    expect(run.status).toBe("done")
    expect(run.completion).toMatchObject({ source: "hook", kind: "done" })
    expect(run.final_message).toBe("Added README.md as well.")
    expect(run.completion.detail.payload).toMatchObject({ hook_event_name: "Stop", last_assistant_message: "Added README.md as well." })
    expect(fs.existsSync(path.join(repo, "README.md"))).toBe(true)
    expect(endpoint.mainRequests()).toBe(4)
    expect(ws.tmux("has-session", "-t", "=agent-bd-tui").status).not.toBe(0)
  })

  it("a Stop hook carrying the previous attempt's id does not end the current attempt", async () => {
    const { ws, repo, endpoint } = await setUp([
      { kind: "hang" },
      { kind: "text", text: "Before I start: which file should I create?" },
      { kind: "tool", name: "Write", input: { file_path: "answer.txt", content: "ok\n" } },
      { kind: "text", text: "Created answer.txt." }
    ])
    // No deadline: it would bind attempt 2 as well (it is per attempt and runs while the agent waits for input),
    // and attempt 2's TUI start, question, answer and last turn do not fit a short one on a loaded machine.
    const child = ws.start("dispatch", "bd-stale-stop", "--repo", repo, "--agent", "claude-tui", "--prompt", "create a file", "--max-retries", "2", "--wait")
    // Attempt 1 never hears from its model; once its request hangs, its agent dies, and attempt 2 asks a question.
    await eventually(() => endpoint.mainRequests() === 1, 60_000, "attempt 1's request to its model")
    const panePid = ws.tmux("list-panes", "-t", "=agent-bd-stale-stop:", "-F", "#{pane_pid}").stdout.trim()
    const agentPid = Number(fs.readFileSync(`/proc/${panePid}/task/${panePid}/children`, "utf8").trim().split(/\s+/)[0])
    expect(agentPid, `the launcher ${panePid} runs the agent`).toBeGreaterThan(0)
    process.kill(agentPid, "SIGKILL")
    const waiting = await eventually(() => {
      const run = ws.readRun("bd-stale-stop")
      return run?.attempt === 2 && run.lifecycle_state === "running.waitingInput" ? run : null
    }, 60_000, "attempt 2 waiting for input")
    const firstId = waiting.previous_attempts[0].attempt_id
    expect(waiting.previous_attempts[0]).toMatchObject({ outcome: "failed", exit_code: 137 })
    // The first attempt's Stop hook, late: exactly what its settings file would have run.
    const stale = spawnSync(process.execPath, [cliEntry, "--workspace", ws.workspace, "--config", ws.configFile, "signal", "--from", "claude-hook", "--attempt", firstId], {
      input: JSON.stringify({ hook_event_name: "Stop", last_assistant_message: "All done (stale)." }),
      env: { ...process.env, WARDEN_BEAD: "bd-stale-stop", WARDEN_ATTEMPT: firstId },
      encoding: "utf8"
    })
    expect(stale.status).toBe(0)
    expect(stale.stderr).toContain(`attempt ${firstId} is not the current attempt`)
    await eventually(() => ws.readRun("bd-stale-stop")?.ignored_signals.length === 1, 10_000, "the stale Stop ignored")
    expect(ws.readRun("bd-stale-stop").lifecycle_state).toBe("running.waitingInput")
    const sent = await ws.warden("send", "bd-stale-stop", "answer.txt")
    expect(sent.status, sent.stdout + sent.stderr).toBe(0)
    expect(await exited(child), child.output()).toBe(0)
    const run = ws.readRun("bd-stale-stop")
    expect(run).toMatchObject({ status: "done", attempt: 2, final_message: "Created answer.txt." })
    expect(run.ignored_signals[0]).toMatchObject({ reason: `for attempt ${firstId}, not the current ${run.attempt_id}` })
  })

  it("the TUI without the folder trust: preflight names it, the session waits at the dialog, and `warden send --key` answers it", async () => {
    const { ws, repo } = await setUp(
      [
        { kind: "tool", name: "Write", input: { file_path: "trusted.txt", content: "ok\n" } },
        { kind: "text", text: "Created trusted.txt." }
      ],
      { trust: false }
    )
    const pre = await ws.warden("preflight", "--bead", "bd-untrusted", "--repo", repo, "--agent", "claude-tui", "--json")
    // Named, as a warning: the attempt may run, and will wait at the dialog.
    expect(pre.status).toBe(0)
    const failed = JSON.parse(pre.stdout).checks.filter((c: { ok: boolean }) => !c.ok)
    expect(failed.map((c: { name: string; advisory: boolean }) => [c.name, c.advisory])).toEqual([["claude-folder-trust", true]])
    expect(failed[0].detail).toMatch(/hasTrustDialogAccepted.*the TUI will ask/)
    expect((await ws.warden("preflight", "--bead", "bd-untrusted", "--repo", repo, "--agent", "claude-tui")).stdout).toMatch(/claude-folder-trust +WARNING/)
    const child = ws.start("dispatch", "bd-untrusted", "--repo", repo, "--agent", "claude-tui", "--prompt", "create trusted.txt", "--stall", "2", "--wait")
    const run = await eventually(() => {
      const r = ws.readRun("bd-untrusted")
      return r?.lifecycle_state === "running.waitingInput" ? r : null
    }, 60_000, "waiting-input")
    await eventually(() => { const reason = ws.readResult("bd-untrusted")?.reason ?? ""; return /^waiting for input: .*Is this a project you created or one you trust\?/.test(reason) }, 5_000, "the result record caught up")
    expect(run.evidence[0]).toMatchObject({ kind: "waiting-input", source: "dialog" })
    // Longer than the stall time: still waiting, not stalled, not done.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    expect(ws.readRun("bd-untrusted").lifecycle_state).toBe("running.waitingInput")
    // The dialog wants a choice: move to "Yes, I trust this folder" (a key can be lost as a dialog draws: check), then Enter.
    await eventually(async () => {
      if (/❯ Yes, I trust this folder/.test(ws.tmux("capture-pane", "-p", "-t", "=agent-bd-untrusted:").stdout)) return true
      await ws.warden("send", "bd-untrusted", "--key", "Down")
      return false
    }, 10_000, "the trust option selected")
    expect((await ws.warden("send", "bd-untrusted", "--key", "Enter")).status).toBe(0)
    // Trusted now: the prompt is typed once the TUI is ready, and the work ends done through the Stop hook.
    expect(await exited(child), child.output()).toBe(0)
    const done = ws.readRun("bd-untrusted")
    expect(done).toMatchObject({ status: "done", final_message: "Created trusted.txt.", completion: { source: "hook" } })
    expect(done.evidence.map((d: { kind: string }) => d.kind).slice(0, 2)).toEqual(["waiting-input", "resumed"])
    expect(fs.readFileSync(path.join(repo, "trusted.txt"), "utf8")).toBe("ok\n")
  })

  it("warden doctor reports each profile's CLI version and what its TUI would ask", async () => {
    const { ws, repo } = await setUp([], { trust: false })
    const out = await ws.warden("doctor", "--repo", repo, "--json")
    const report = JSON.parse(out.stdout) as { ok: boolean; profiles: Array<{ profile: string; checks: Array<{ name: string; ok: boolean; detail: string }> }> }
    const checks = (name: string) => report.profiles.find((p) => p.profile === name)!.checks
    expect(checks("claude").find((c) => c.name === "cli-version")).toMatchObject({ ok: true, detail: "2.1.332 (Claude Code)" })
    expect(checks("claude-tui").find((c) => c.name === "claude-folder-trust")).toMatchObject({ ok: false })
    expect(checks("claude-tui").find((c) => c.name === "claude-api-key-approved")).toMatchObject({ ok: true })
    expect(checks("codex").find((c) => c.name === "cli-version")).toMatchObject({ ok: true, detail: "codex-cli 0.171.0" })
    // Only warnings: nothing would stop an attempt.
    expect(out.status).toBe(0)
  })
})
