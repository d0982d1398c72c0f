import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PROMPT_MARKER } from "../src/argus/llmContract.js"
import { startAnthropicEndpoint, type AnthropicEndpoint, type ClaudeStep } from "./support/anthropicEndpoint.js"
import { eventually, exited, makeWorkspace, type Workspace } from "./support/workspace.js"

/**
 * Argus deciding with an LLM, in the built daemon, against a local server speaking the Messages API that
 * answers with hostile or broken decisions: every forbidden one is refused and audited, and nothing
 * outside the allowlist happens (the processes and tmux sessions it names are all still there).
 */
const KEY = "sk-argus-test-key-0123456789"
const isArgus = (body: any): boolean => JSON.stringify(body?.messages ?? "").includes(PROMPT_MARKER)

const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z")
  } catch {
    return false
  }
}

type CycleView = {
  decider: string
  assessment?: string
  decisions: Array<{ action: unknown; target: unknown; source: string; verdict: string; reason: string }>
}

const seedAction = (type: string, target: unknown, reason = "the model says so") => ({ type, target, reason, message: "", observation: "" })
const answer = (actions: unknown[], assessment = "trouble") => JSON.stringify({ assessment, actions, observations: [] })

describe("Argus with the LLM decider (Messages API), answered with hostile and broken decisions", () => {
  const steps: ClaudeStep[] = []
  let endpoint: AnthropicEndpoint
  let ws: Workspace
  let daemon: { child: ChildProcess; base: string; token: string }
  const started: ChildProcess[] = []
  let otherSocket = ""

  const cycle = async (): Promise<CycleView> => {
    const response = await fetch(`${daemon.base}/v1/argus/cycle`, { method: "POST", headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" }, body: "{}" })
    expect(response.status).toBe(200)
    return (await response.json()) as CycleView
  }
  const refusedWith = (view: CycleView, action: unknown, target: unknown) =>
    view.decisions.find((d) => d.action === action && JSON.stringify(d.target) === JSON.stringify(target))

  beforeAll(async () => {
    endpoint = await startAnthropicEndpoint(steps, { mainWhen: isArgus })
    ws = makeWorkspace(
      {
        argus: {
          enabled: true,
          intervalSeconds: 3600,
          decider: "llm",
          llm: { baseUrl: endpoint.url, timeoutSeconds: 3 },
          // Rules that never act here: whatever is done is the model's doing, and only what the allowlist lets through.
          graceSeconds: 3600,
          orphanCycles: 100
        }
      },
      { ANTHROPIC_API_KEY: KEY }
    )
    daemon = await ws.startDaemon()
    // Something to judge: an agent-* tmux session with no record.
    expect(ws.tmux("new-session", "-d", "-s", "agent-ghost", "sleep 600").status).toBe(0)
    // Another tmux server, with an agent-* session of its own.
    otherSocket = path.join(ws.dir, "other.sock")
    expect(spawnSync("tmux", ["-S", otherSocket, "new-session", "-d", "-s", "agent-elsewhere", "sleep 600"]).status).toBe(0)
    // A live bead.
    const repo = ws.makeRepo("repo")
    const dispatched = await ws.warden("dispatch", "bd-live", "--repo", repo, "--agent", "shell", "--command", "sleep 600", "--prompt", "x")
    expect(dispatched.status).toBe(0)
    await eventually(() => ws.tmux("has-session", "-t", "=agent-bd-live").status === 0, 20_000, "the live bead's tmux session")
  }, 60_000)

  afterAll(async () => {
    if (daemon !== undefined) {
      await ws.warden("cancel", "bd-live")
      daemon.child.kill("SIGTERM")
      await exited(daemon.child)
    }
    for (const child of started) {
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // already gone
      }
    }
    spawnSync("tmux", ["-S", otherSocket, "kill-server"])
    ws?.cleanup()
    await endpoint?.close()
  })

  it("refuses and audits every forbidden action, and does none of them", async () => {
    // A fresh process that is no agent's, carrying a dead attempt's variables all the same.
    const sleeper = spawn("sleep", ["600"], { detached: true, stdio: "ignore", env: { ...process.env, WARDEN_ATTEMPT: "att-00000000000dead1", WARDEN_WORKSPACE: ws.workspace } })
    started.push(sleeper)
    steps.push({
      kind: "text",
      text: answer([
        seedAction("kill_pid", 1),
        seedAction("kill_pid", daemon.child.pid!),
        seedAction("kill_pid", sleeper.pid!),
        seedAction("restart_service", "sshd"),
        seedAction("restart_service", "web; rm -rf /"),
        seedAction("kill_tmux", "agent-x$(reboot)"),
        seedAction("kill_tmux", "agent-bd-live"),
        seedAction("kill_tmux", "agent-elsewhere"),
        { type: "run_shell", target: "rm -rf /", reason: "cleanup", message: "", observation: "" }
      ])
    })
    const view = await cycle()
    expect(view.decider).toBe(`llm: messages-api claude-haiku-4-5 at ${endpoint.url}`)
    expect(view.assessment).toBe("trouble")
    expect(view.decisions).toHaveLength(9)
    for (const d of view.decisions) {
      expect(d.source).toBe("llm")
      expect(d.verdict).toBe("refused")
    }
    expect(refusedWith(view, "kill_pid", 1)!.reason).toBe("pid 1 is never killed")
    expect(refusedWith(view, "kill_pid", daemon.child.pid)!.reason).toMatch(/is protected|not an observed orphan/)
    expect(refusedWith(view, "kill_pid", sleeper.pid)!.reason).toBe(`pid ${sleeper.pid} is not an observed orphan agent process`)
    expect(refusedWith(view, "restart_service", "sshd")!.reason).toBe("service sshd is not configured")
    expect(refusedWith(view, "restart_service", "web; rm -rf /")!.reason).toMatch(/not a service name .*no shell metacharacters/)
    expect(refusedWith(view, "kill_tmux", "agent-x$(reboot)")!.reason).toBe("kill_tmux's target is not an agent-* session name")
    expect(refusedWith(view, "kill_tmux", "agent-bd-live")!.reason).toBe("session agent-bd-live belongs to a live bead")
    expect(refusedWith(view, "kill_tmux", "agent-elsewhere")!.reason).toBe("session agent-elsewhere is not an observed agent session")
    expect(refusedWith(view, "run_shell", "rm -rf /")!.reason).toMatch(/^unknown action type "run_shell"/)
    // The request went to the Messages API with the key in its header, the model asked for, the observations in it.
    const request = endpoint.requests.filter((r) => isArgus(r.body)).at(-1)!
    expect(request.path).toBe("/v1/messages")
    expect(request.body.model).toBe("claude-haiku-4-5")
    expect(JSON.stringify(request.body)).toContain("agent-ghost")
    // Nothing happened.
    expect(alive(daemon.child.pid!)).toBe(true)
    expect(alive(sleeper.pid!)).toBe(true)
    expect(ws.tmux("has-session", "-t", "=agent-bd-live").status).toBe(0)
    expect(ws.tmux("has-session", "-t", "=agent-ghost").status).toBe(0)
    expect(spawnSync("tmux", ["-S", otherSocket, "has-session", "-t", "=agent-elsewhere"]).status).toBe(0)
    // Audited, each with its verdict and why, marked as the model's.
    const audit = fs.readFileSync(path.join(ws.workspace, "argus", "decisions.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line))
    expect(audit.filter((line) => line.source === "llm" && line.verdict === "refused").length).toBeGreaterThanOrEqual(9)
    expect(audit.find((line) => line.action === "kill_pid" && line.target === 1)).toMatchObject({ verdict: "refused", reason: "pid 1 is never killed" })
  })

  it("reads 50 of a thousand actions, refuses the rest in one audited line, and acts on none beyond the allowlist", async () => {
    // Compact (the contract's notes left out), so the answer stays under the 64 KiB read at all.
    steps.push({ kind: "text", text: answer(Array.from({ length: 1000 }, () => ({ type: "kill_pid", target: 1, reason: "x" }))) })
    const view = await cycle()
    expect(view.decisions).toHaveLength(51)
    expect(view.decisions[0]).toMatchObject({ action: "(answer)", verdict: "refused", reason: "950 further action(s) ignored: an answer may propose at most 50" })
    expect(view.decisions.slice(1).every((d) => d.verdict === "refused" && d.reason === "pid 1 is never killed")).toBe(true)
  })

  it("when the answer is prose, refuses it and lets the rules decide", async () => {
    steps.push({ kind: "text", text: "Everything looks broken. I recommend you run `systemctl restart sshd` and kill pid 1." })
    const view = await cycle()
    expect(view.decider).toMatch(/^rules: the LLM's answer was refused \(the answer is not JSON/)
    expect(view.decisions[0]).toMatchObject({ action: "(answer)", source: "llm", verdict: "refused" })
    expect(view.decisions.slice(1).every((d) => d.source === "rules")).toBe(true)
  })

  it("reads an answer in a code fence and carries out what the allowlist accepts", async () => {
    steps.push({
      kind: "text",
      text: "Here is my decision:\n```json\n" + answer([{ type: "log", target: "argus:ghost", reason: "an agent session with no record", message: "", observation: "agent-ghost has no record" }], "one stray session") + "\n```"
    })
    const view = await cycle()
    expect(view.decisions).toEqual([{ action: "log", target: "argus:ghost", source: "llm", verdict: "done", reason: "allowed: an agent session with no record" }])
    expect(fs.readFileSync(path.join(ws.workspace, "argus", "observations.md"), "utf8")).toMatch(/argus:ghost: agent-ghost has no record\n/)
  })

  it("when the model is slow, the rules decide after the timeout", async () => {
    steps.push({ kind: "hang" })
    const before = Date.now()
    const view = await cycle()
    expect(Date.now() - before).toBeGreaterThanOrEqual(2_900)
    expect(view.decider).toBe("rules: the LLM was too slow (no answer within 3 s)")
    expect(view.decisions.every((d) => d.source === "rules")).toBe(true)
  })

  it("`warden argus` shows who decided, and the key is on no command line and in no file of the workspace", async () => {
    const listed = await ws.warden("argus")
    expect(listed.status).toBe(0)
    expect(listed.stdout).toContain("decided by llm: messages-api claude-haiku-4-5")
    expect(listed.stdout).toContain("assessment: one stray session")
    expect(fs.readFileSync(`/proc/${daemon.child.pid}/cmdline`, "utf8")).not.toContain(KEY)
    const files = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []))
    for (const file of files(ws.workspace)) expect(fs.readFileSync(file, "utf8").includes(KEY), file).toBe(false)
  })
})

describe("Argus with the LLM decider through `claude -p` (the real CLI, against the same local Messages API)", () => {
  const claude = path.resolve("test-agents/node_modules/.bin/claude")
  const steps: ClaudeStep[] = []
  let endpoint: AnthropicEndpoint
  let ws: Workspace
  let daemon: { child: ChildProcess; base: string; token: string }

  beforeAll(async () => {
    endpoint = await startAnthropicEndpoint(steps, { mainWhen: isArgus })
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "warden-argus-home-"))
    ws = makeWorkspace(
      {
        argus: { enabled: true, intervalSeconds: 3600, decider: "llm", llm: { via: "claude-cli", command: claude, baseUrl: endpoint.url, model: "claude-haiku-4-5", timeoutSeconds: 60 }, graceSeconds: 3600, orphanCycles: 100 }
      },
      { ANTHROPIC_API_KEY: KEY, HOME: home }
    )
    daemon = await ws.startDaemon()
    expect(ws.tmux("new-session", "-d", "-s", "agent-ghost", "sleep 600").status).toBe(0)
  }, 60_000)

  afterAll(async () => {
    if (daemon !== undefined) {
      daemon.child.kill("SIGTERM")
      await exited(daemon.child)
    }
    ws?.cleanup()
    await endpoint?.close()
  })

  it("asks claude -p with no tools and the question on stdin, and validates its answer like any other", async () => {
    steps.push({
      kind: "text",
      text: "```json\n" + answer([seedAction("kill_pid", 1), { type: "log", target: "argus:cli", reason: "asked through claude -p", message: "claude -p answered", observation: "" }], "via the CLI") + "\n```"
    })
    const response = await fetch(`${daemon.base}/v1/argus/cycle`, { method: "POST", headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" }, body: "{}" })
    expect(response.status).toBe(200)
    const view = (await response.json()) as CycleView
    expect(view.decider).toBe(`llm: claude-cli claude-haiku-4-5 (${claude})`)
    expect(view.decisions.map((d) => [d.action, d.verdict, d.source])).toEqual([
      ["kill_pid", "refused", "llm"],
      ["log", "done", "llm"]
    ])
    const asked = endpoint.requests.find((r) => isArgus(r.body))!
    expect(asked.body.model).toBe("claude-haiku-4-5")
    // No tools were offered to the model.
    expect(asked.body.tools ?? []).toEqual([])
  }, 90_000)
})
