/**
 * The real Claude Code CLI (test-agents/, a native binary) against the local scripted Anthropic
 * endpoint: headless `claude -p` and the interactive TUI in tmux, with hooks. Also checks the
 * screen patterns against the fixtures captured from the real CLI (test/fixtures/claude).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { startAnthropicEndpoint, type AnthropicEndpoint, type ClaudeStep } from "./support/anthropicEndpoint.js"
import { eventually, git } from "./support/workspace.js"

const root = path.resolve(new URL("..", import.meta.url).pathname)
const claudeBin = path.join(root, "test-agents", "node_modules", ".bin", "claude")
const fixtures = path.join(root, "test", "fixtures", "claude")
const API_KEY = "sk-ant-test-0123456789abcdefghij"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Fails (never skips) when the CLI is not installed. */
const requireClaude = () => {
  if (!fs.existsSync(claudeBin)) {
    throw new Error(`The Claude Code CLI is missing at ${claudeBin}: run \`npm run test-agents\` to install it`)
  }
}

// --- screen patterns (what the lead's profile can use; tested against the fixtures below) -------

/** The input box's prompt line, empty: `❯` followed by a no-break space. */
const READY = /^❯[\s\u00a0]*$/m
/** A turn in progress: the status line offers to interrupt. */
const BUSY = /esc to interrupt/
const TRUST_DIALOG = /Quick safety check: Is this a project you created or one you trust\?/
const API_KEY_DIALOG = /Do you want to use this API key\?/
const BYPASS_DIALOG = /WARNING: Claude Code running in Bypass Permissions mode/
const CONNECTIVITY_ERROR = /Unable to connect to Anthropic services/
/** A tool permission prompt: "Do you want to create hello.txt?", "Do you want to proceed?", then a numbered menu. */
const PERMISSION_PROMPT = /^\s*Do you want to .+\?\s*$[\s\S]*^\s*❯ 1\. Yes\s*$/m
const idle = (screen: string) => READY.test(screen) && !BUSY.test(screen)

const fixture = (name: string) => fs.readFileSync(path.join(fixtures, name), "utf8")
const keyLine = (name: string, pattern: RegExp) => {
  const line = fixture(name)
    .split("\n")
    .find((l) => pattern.test(l))
  if (line === undefined) throw new Error(`fixture ${name} has no line matching ${pattern}`)
  return line.trim()
}

// --- scratch repo, HOME, hooks ------------------------------------------------------------------

interface Scratch {
  dir: string
  repo: string
  home: string
  hooks: string
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const makeScratch = (): Scratch => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "warden-claude-")))
  const repo = path.join(dir, "repo")
  const home = path.join(dir, "home")
  const hooks = path.join(dir, "hooks")
  for (const d of [repo, home, hooks]) fs.mkdirSync(d)
  git(repo, "init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "# scratch\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "initial")
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return { dir, repo, home, hooks }
}

const endpoint = async (script: ReadonlyArray<ClaudeStep>, usage?: { input_tokens: number; output_tokens: number }) => {
  const ep = await startAnthropicEndpoint(script, usage === undefined ? {} : { usage })
  cleanups.push(() => ep.close())
  return ep
}

/** What the agent's environment needs: no inherited ANTHROPIC_* or CLAUDE_* from the developer. */
const agentEnv = (s: Scratch, ep: AnthropicEndpoint, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: s.home,
  LANG: "C.UTF-8",
  ANTHROPIC_BASE_URL: ep.url,
  ANTHROPIC_API_KEY: API_KEY,
  IS_SANDBOX: "1", // we run as root: bypassPermissions refuses to start without it
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", // no api.anthropic.com telemetry lookups, no title side call
  CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL: "1", // no git clone of github.com/anthropics/claude-plugins-official
  DISABLE_AUTOUPDATER: "1",
  ...extra
})

/** `~/.claude.json` that skips onboarding (and its connectivity check), folder trust and the API-key approval. */
const acceptedClaudeJson = (s: Scratch, extra: Record<string, unknown> = {}) => ({
  hasCompletedOnboarding: true,
  customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
  projects: { [s.repo]: { hasTrustDialogAccepted: true } },
  ...extra
})
const writeClaudeJson = (s: Scratch, value: unknown) => fs.writeFileSync(path.join(s.home, ".claude.json"), JSON.stringify(value, null, 2))

const HOOK_EVENTS = ["Stop", "Notification", "UserPromptSubmit", "SessionStart"] as const
type HookEvent = (typeof HOOK_EVENTS)[number]

/** A `--settings` file whose hooks each append their stdin payload (one JSON document) to hooks/EVENT.jsonl. */
const writeSettings = (s: Scratch, extra: Record<string, unknown> = {}) => {
  const hooks = Object.fromEntries(
    HOOK_EVENTS.map((event) => {
      const file = path.join(s.hooks, `${event}.jsonl`)
      return [event, [{ hooks: [{ type: "command", command: `cat >> '${file}'; echo >> '${file}'` }] }]]
    })
  )
  const file = path.join(s.dir, "settings.json")
  fs.writeFileSync(file, JSON.stringify({ ...extra, hooks }, null, 2))
  return file
}

const hookPayloads = (s: Scratch, event: HookEvent): any[] => {
  const file = path.join(s.hooks, `${event}.jsonl`)
  if (!fs.existsSync(file)) return []
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line) => {
      try {
        return [JSON.parse(line)]
      } catch {
        return [] // a payload still being written
      }
    })
}

// --- claude -p ----------------------------------------------------------------------------------

const spawnPrint = (s: Scratch, env: Record<string, string>, prompt: string, args: string[] = []) => {
  const child = spawn(claudeBin, ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", ...args], {
    cwd: s.repo,
    env,
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  // With an open stdin pipe `-p` waits for input: give the prompt on stdin and close it.
  child.stdin!.end(prompt)
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await closed
    }
  })
  return { child, closed, output: () => ({ stdout, stderr }) }
}

// --- interactive claude in tmux -----------------------------------------------------------------

const startTui = (s: Scratch, env: Record<string, string>, args: string[]) => {
  const socket = path.join(s.dir, "tmux.sock")
  // The tmux client's environment becomes the server's global environment: keep it minimal, and
  // give the session its environment explicitly with -e.
  const clientEnv = { PATH: env.PATH ?? "/usr/bin:/bin", HOME: s.home, LANG: "C.UTF-8" }
  const tmux = (...a: string[]) => spawnSync("tmux", ["-S", socket, "-f", "/dev/null", ...a], { encoding: "utf8", env: clientEnv })
  const started = tmux(
    "new-session", "-d", "-x", "200", "-y", "50", "-s", "agent", "-c", s.repo,
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    "--", claudeBin, ...args
  )
  if (started.status !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`)
  const pid = Number(tmux("display-message", "-p", "-t", "=agent:", "#{pane_pid}").stdout.trim())
  const alive = () => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  const kill = async () => {
    tmux("kill-server")
    for (let i = 0; i < 50 && alive(); i++) await sleep(100)
    if (alive()) process.kill(pid, "SIGKILL")
    for (let i = 0; i < 20 && alive(); i++) await sleep(100)
  }
  cleanups.push(kill)
  let last = ""
  const screen = () => {
    const r = tmux("capture-pane", "-p", "-t", "=agent:")
    if (r.status === 0) last = r.stdout
    return last
  }
  const waitForScreen = async (test: (screen: string) => boolean, what: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const text = screen()
      if (test(text)) return text
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`)
      await sleep(100)
    }
  }
  /** Types a prompt and submits it. Enter must come separately, after the text has landed. */
  const type = async (text: string) => {
    tmux("send-keys", "-t", "=agent:", "-l", text)
    await waitForScreen((sc) => sc.split("\n").some((l) => l.startsWith("❯") && l.includes(text.slice(0, 40))), "the typed text in the input box", 5_000)
    await sleep(300)
    tmux("send-keys", "-t", "=agent:", "Enter")
  }
  const keys = (...k: string[]) => tmux("send-keys", "-t", "=agent:", ...k)
  /** Moves a dialog's selection onto `option` (keys sent right after a dialog appears may be dropped). */
  const select = async (option: string, key: "Up" | "Down") => {
    const selected = (sc: string) => sc.split("\n").some((l) => /^\s*❯/.test(l) && l.includes(option))
    for (let i = 0; i < 20 && !selected(screen()); i++) {
      keys(key)
      await sleep(250)
    }
    await waitForScreen(selected, `selection on "${option}"`, 2_000)
    keys("Enter")
  }
  return { screen, waitForScreen, type, keys, select, kill, alive, pid }
}

// --- the endpoint itself ------------------------------------------------------------------------

describe("the scripted Anthropic endpoint", () => {
  it("answers streaming and plain requests, side calls, count_tokens, models and probes", async () => {
    const ep = await endpoint([{ kind: "text", text: "first" }])
    const main = { model: "claude-test-model", max_tokens: 100, tools: [{ name: "Write", input_schema: {} }], messages: [{ role: "user", content: "hi" }] }
    const side = { model: "claude-haiku-x", max_tokens: 100, messages: [{ role: "user", content: "title?" }], output_config: { format: { type: "json_schema", schema: { type: "object", properties: { title: { type: "string" } }, required: ["title"] } } } }
    const post = (p: string, body: unknown) => fetch(ep.url + p, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

    const sideAnswer: any = await (await post("/v1/messages?beta=true", side)).json()
    expect(sideAnswer.model).toBe("claude-haiku-x")
    expect(JSON.parse(sideAnswer.content[0].text)).toEqual({ title: "Scripted session" })
    expect(ep.mainRequests()).toBe(0)

    const streamed = await (await post("/v1/messages?beta=true", { ...main, stream: true })).text()
    const events = [...streamed.matchAll(/^event: (\S+)$/gm)].map((m) => m[1])
    expect(events).toEqual(["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
    expect(streamed).toContain('"text":"first"')
    expect(streamed).toContain('"model":"claude-test-model"')
    expect(streamed).toMatch(/"stop_reason":"end_turn".*"usage":\{"output_tokens":30\}/)
    expect(ep.mainRequests()).toBe(1)

    const plain: any = await (await post("/v1/messages", main)).json()
    expect(plain).toMatchObject({ type: "message", role: "assistant", content: [{ type: "text", text: "done" }], usage: { input_tokens: 120, output_tokens: 30 } })
    expect(ep.mainRequests()).toBe(1)

    expect(await (await post("/v1/messages/count_tokens?beta=true", main)).json()).toEqual({ input_tokens: 120 })
    expect(((await (await fetch(ep.url + "/v1/models")).json()) as any).data.length).toBeGreaterThan(0)
    expect((await fetch(ep.url + "/api/hello", { method: "HEAD" })).status).toBe(200)
    expect(ep.requests.map((r) => r.path)).toEqual(["/v1/messages?beta=true", "/v1/messages?beta=true", "/v1/messages", "/v1/messages/count_tokens?beta=true", "/v1/models", "/api/hello"])
  })
})

// --- the screen patterns against the captured fixtures ------------------------------------------

describe("Claude Code screen patterns match the captured fixtures", () => {
  const screens = {
    ready: fixture("ready.txt"),
    readyDefault: fixture("ready-default-mode.txt"),
    turnDone: fixture("turn-done.txt"),
    turnDoneQuestion: fixture("turn-done-question.txt"),
    working: fixture("working.txt"),
    trust: fixture("trust-dialog.txt"),
    apiKey: fixture("api-key-dialog.txt"),
    bypass: fixture("bypass-dialog.txt"),
    connectivity: fixture("connectivity-error.txt"),
    permission: fixture("permission-prompt.txt"),
    permissionBash: fixture("permission-prompt-bash.txt")
  }

  it("idle (ready for a typed prompt) only on the ready and turn-done screens", () => {
    for (const name of ["ready", "readyDefault", "turnDone", "turnDoneQuestion"] as const) expect(idle(screens[name]), name).toBe(true)
    for (const name of ["working", "trust", "apiKey", "bypass", "connectivity", "permission", "permissionBash"] as const) expect(idle(screens[name]), name).toBe(false)
    expect(BUSY.test(screens.working)).toBe(true)
  })

  it("each dialog and prompt is told apart", () => {
    const patterns = { trust: TRUST_DIALOG, apiKey: API_KEY_DIALOG, bypass: BYPASS_DIALOG, connectivity: CONNECTIVITY_ERROR, permission: PERMISSION_PROMPT }
    for (const [screenName, screen] of Object.entries(screens)) {
      for (const [patternName, pattern] of Object.entries(patterns)) {
        const expected = screenName === patternName || (patternName === "permission" && screenName === "permissionBash")
        expect(pattern.test(screen), `${patternName} on ${screenName}`).toBe(expected)
      }
    }
  })

  it("the hook payload fixtures have the fields the supervisor reads", () => {
    const stop = JSON.parse(fixture("stop-hook.json"))
    expect(stop).toMatchObject({ hook_event_name: "Stop", last_assistant_message: "wrote hello.txt", stop_hook_active: false })
    expect(typeof stop.session_id).toBe("string")
    expect(typeof stop.transcript_path).toBe("string")
    expect(JSON.parse(fixture("stop-hook-question.json")).last_assistant_message).toMatch(/\?$/)
    expect(JSON.parse(fixture("notification-hook.json"))).toMatchObject({ hook_event_name: "Notification", notification_type: "permission_prompt", message: "Claude needs your permission" })
    expect(JSON.parse(fixture("notification-idle-hook.json"))).toMatchObject({ hook_event_name: "Notification", notification_type: "idle_prompt", message: "Claude is waiting for your input" })
  })
})

// --- claude -p ----------------------------------------------------------------------------------

describe("claude -p (headless) against the endpoint", () => {
  it("runs a scripted Write tool call, exits 0, and reports the result, usage and cost in stream-json", async () => {
    requireClaude()
    const s = makeScratch()
    const target = path.join(s.repo, "hello.txt")
    const ep = await endpoint(
      [
        { kind: "tool", name: "Write", input: { file_path: target, content: "hello from claude\n" } },
        { kind: "text", text: "wrote hello.txt" }
      ],
      { input_tokens: 111, output_tokens: 22 }
    )
    const run = spawnPrint(s, agentEnv(s, ep), "Create hello.txt\n")
    const code = await Promise.race([run.closed, sleep(45_000).then(() => "timeout" as const)])
    const { stdout, stderr } = run.output()
    expect(code, `stderr: ${stderr}\nstdout: ${stdout}`).toBe(0)
    expect(fs.readFileSync(target, "utf8")).toBe("hello from claude\n")

    const lines = stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
    expect(lines.map((l) => l.type)).toEqual(["system", "assistant", "user", "assistant", "result"])
    expect(lines[0]).toMatchObject({ type: "system", subtype: "init", cwd: s.repo, permissionMode: "bypassPermissions", apiKeySource: "ANTHROPIC_API_KEY" })
    expect(lines[1].message.content[0]).toMatchObject({ type: "tool_use", name: "Write" })
    expect(lines[2].message.content[0]).toMatchObject({ type: "tool_result", tool_use_id: lines[1].message.content[0].id })
    const result = lines.at(-1)
    expect(result).toMatchObject({ type: "result", subtype: "success", is_error: false, result: "wrote hello.txt", num_turns: 2, stop_reason: "end_turn" })
    // usage sums the two main requests' usage as the endpoint reported it
    expect(result.usage).toMatchObject({ input_tokens: 222, output_tokens: 44 })
    expect(typeof result.total_cost_usd).toBe("number")
    expect(result.total_cost_usd).toBeGreaterThan(0)
    expect(Object.values(result.modelUsage as Record<string, any>)[0]).toMatchObject({ inputTokens: 222, outputTokens: 44 })
    for (const field of ["session_id", "duration_ms", "duration_api_ms", "permission_denials", "modelUsage", "uuid"]) expect(result).toHaveProperty(field)

    expect(ep.mainRequests()).toBe(2)
    const main = ep.requests.filter((r) => r.path.startsWith("/v1/messages"))
    expect(main).toHaveLength(2)
    expect(main[0]!.path).toBe("/v1/messages?beta=true")
    expect(main[0]!.body.stream).toBe(true)
    // the second request carries the tool result for the scripted tool call
    expect(JSON.stringify(main[1]!.body.messages.at(-1))).toContain(lines[1].message.content[0].id)
  })

  it("does not finish by itself when the endpoint hangs", async () => {
    requireClaude()
    const s = makeScratch()
    const ep = await endpoint([{ kind: "hang" }])
    const run = spawnPrint(s, agentEnv(s, ep), "Do something\n")
    await eventually(() => ep.mainRequests() === 1, 20_000, "the main request")
    await sleep(4_000)
    expect(run.child.exitCode).toBeNull()
    expect(run.child.signalCode).toBeNull()
    run.child.kill("SIGTERM")
    const code = await Promise.race([run.closed, sleep(5_000).then(() => "still running" as const)])
    if (code === "still running") run.child.kill("SIGKILL")
    await run.closed
    expect(ep.mainRequests()).toBe(1)
  })
})

// --- interactive claude in tmux -----------------------------------------------------------------

describe("interactive claude in tmux against the endpoint", () => {
  it("with a pre-accepted ~/.claude.json reaches the ready prompt; a typed prompt leads to the Write tool and a Stop hook", async () => {
    requireClaude()
    const s = makeScratch()
    const target = path.join(s.repo, "hello.txt")
    const ep = await endpoint([
      { kind: "tool", name: "Write", input: { file_path: target, content: "hello\n" } },
      { kind: "text", text: "wrote hello.txt" }
    ])
    writeClaudeJson(s, acceptedClaudeJson(s))
    const settings = writeSettings(s, { skipDangerousModePermissionPrompt: true })
    const started = Date.now()
    const tui = startTui(s, agentEnv(s, ep), ["--settings", settings, "--permission-mode", "bypassPermissions"])
    const ready = await tui.waitForScreen(idle, "the ready prompt")
    const readyMs = Date.now() - started
    for (const dialog of [TRUST_DIALOG, API_KEY_DIALOG, BYPASS_DIALOG, CONNECTIVITY_ERROR]) expect(ready).not.toMatch(dialog)
    expect(readyMs).toBeLessThan(15_000)
    if (process.env.CLAUDE_TIMINGS) console.log(`ready ${readyMs} ms after tmux new-session`)
    expect(hookPayloads(s, "SessionStart")[0]).toMatchObject({ hook_event_name: "SessionStart", source: "startup", cwd: s.repo })

    await tui.type("create hello.txt")
    const submitted = await eventually(() => hookPayloads(s, "UserPromptSubmit")[0], 10_000, "UserPromptSubmit")
    expect(submitted).toMatchObject({ prompt: "create hello.txt", cwd: s.repo })

    const stop = await eventually(() => hookPayloads(s, "Stop")[0], 20_000, "the Stop hook")
    expect(stop).toMatchObject({ hook_event_name: "Stop", last_assistant_message: "wrote hello.txt", stop_hook_active: false, cwd: s.repo, permission_mode: "bypassPermissions" })
    expect(stop.session_id).toBe(submitted.session_id)
    expect(stop.transcript_path).toBe(path.join(s.home, ".claude", "projects", s.repo.replace(/[^a-zA-Z0-9]/g, "-"), `${stop.session_id}.jsonl`))
    expect(fs.readFileSync(target, "utf8")).toBe("hello\n")
    await tui.waitForScreen((sc) => idle(sc) && sc.includes("● wrote hello.txt"), "the idle prompt after the turn")
    expect(ep.mainRequests()).toBe(2)
    expect(ep.requests.filter((r) => r.path.startsWith("/v1/messages"))).toHaveLength(2)

    await tui.kill()
    expect(tui.alive()).toBe(false)
  })

  it("side calls (the session-title request) are answered without consuming the script", async () => {
    requireClaude()
    const s = makeScratch()
    const ep = await endpoint([{ kind: "text", text: "the scripted answer" }])
    writeClaudeJson(s, acceptedClaudeJson(s))
    const settings = writeSettings(s, { skipDangerousModePermissionPrompt: true })
    // Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC the TUI asks the model for a session title.
    const env = agentEnv(s, ep)
    delete env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
    const tui = startTui(s, env, ["--settings", settings, "--permission-mode", "bypassPermissions"])
    await tui.waitForScreen(idle, "the ready prompt")
    await tui.type("say something")
    const stop = await eventually(() => hookPayloads(s, "Stop")[0], 20_000, "the Stop hook")
    expect(stop.last_assistant_message).toBe("the scripted answer")
    const titleCalls = () => ep.requests.filter((r) => r.path.startsWith("/v1/messages") && JSON.stringify(r.body?.output_config?.format ?? null).includes('"title"'))
    const title = (await eventually(() => titleCalls()[0], 10_000, "the title request"))!
    expect(title.body.tools ?? []).toEqual([])
    expect(ep.mainRequests()).toBe(1)
    await tui.kill()
  })

  it("without trust pre-accepted shows the trust dialog, then the API-key dialog; accepting both records them in ~/.claude.json", async () => {
    requireClaude()
    const s = makeScratch()
    const ep = await endpoint([])
    writeClaudeJson(s, { hasCompletedOnboarding: true })
    const tui = startTui(s, agentEnv(s, ep), [])
    const trust = await tui.waitForScreen((sc) => TRUST_DIALOG.test(sc), "the trust dialog")
    expect(trust).toContain(keyLine("trust-dialog.txt", TRUST_DIALOG))
    expect(trust).toContain(s.repo)
    expect(idle(trust)).toBe(false)
    await tui.select("Yes, I trust this folder", "Down")

    const apiKey = await tui.waitForScreen((sc) => API_KEY_DIALOG.test(sc), "the API-key dialog")
    expect(apiKey).toContain(keyLine("api-key-dialog.txt", API_KEY_DIALOG))
    expect(apiKey).toContain(`sk-ant-...${API_KEY.slice(-20)}`)
    await tui.select("Yes", "Up")

    await tui.waitForScreen(idle, "the ready prompt")
    const written = JSON.parse(fs.readFileSync(path.join(s.home, ".claude.json"), "utf8"))
    expect(written.projects[s.repo].hasTrustDialogAccepted).toBe(true)
    expect(written.customApiKeyResponses.approved).toEqual([API_KEY.slice(-20)])
    expect(written.hasCompletedOnboarding).toBe(true)
    await tui.kill()
  })

  it("without bypass, a Write asks permission (Notification permission_prompt); a final question fires Stop with it, then idle_prompt", async () => {
    requireClaude()
    const s = makeScratch()
    const target = path.join(s.repo, "hello.txt")
    const question = "I wrote hello.txt. Should I commit it?"
    const ep = await endpoint([
      { kind: "tool", name: "Write", input: { file_path: target, content: "hello\n" } },
      { kind: "text", text: question }
    ])
    // messageIdleNotifThresholdMs (default 60000) brings the idle_prompt notification forward.
    writeClaudeJson(s, acceptedClaudeJson(s, { messageIdleNotifThresholdMs: 2000 }))
    const settings = writeSettings(s)
    const tui = startTui(s, agentEnv(s, ep), ["--settings", settings, "--permission-mode", "default"])
    await tui.waitForScreen(idle, "the ready prompt")
    await tui.type("create hello.txt")

    const prompt = await tui.waitForScreen((sc) => PERMISSION_PROMPT.test(sc), "the permission prompt")
    expect(prompt).toContain(keyLine("permission-prompt.txt", /Do you want to create hello\.txt\?/))
    expect(idle(prompt)).toBe(false)
    const asked = Date.now()
    const notification = await eventually(() => hookPayloads(s, "Notification")[0], 20_000, "the permission Notification")
    expect(notification).toMatchObject({ hook_event_name: "Notification", notification_type: "permission_prompt", message: "Claude needs your permission", cwd: s.repo })
    const notifiedMs = Date.now() - asked
    expect(fs.existsSync(target)).toBe(false)

    tui.keys("Enter") // "1. Yes" is selected
    const stop = await eventually(() => hookPayloads(s, "Stop")[0], 20_000, "the Stop hook")
    expect(stop).toMatchObject({ last_assistant_message: question, permission_mode: "default" })
    expect(fs.readFileSync(target, "utf8")).toBe("hello\n")
    await tui.waitForScreen(idle, "the idle prompt after the turn")

    const idleNotification = await eventually(
      () => hookPayloads(s, "Notification").find((p) => p.notification_type === "idle_prompt"),
      15_000,
      "the idle_prompt Notification"
    )
    expect(idleNotification).toMatchObject({ message: "Claude is waiting for your input", session_id: stop.session_id })
    expect(notifiedMs).toBeLessThan(20_000)
    if (process.env.CLAUDE_TIMINGS) console.log(`permission Notification ${notifiedMs} ms after the prompt showed`)
    await tui.kill()
  })
})
