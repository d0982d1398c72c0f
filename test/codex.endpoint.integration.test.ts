import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import {
  CODEX_SIDE_ANSWER,
  CODEX_TEST_KEY_ENV,
  CODEX_TITLE_PROMPT_PREFIX,
  startOpenAIEndpoint,
  writeCodexHome,
  type CodexStep
} from "./support/openaiEndpoint.js"

/*
 * The real `codex` CLI (npm @openai/codex 0.171.0) against the local scripted Responses endpoint:
 * `codex exec --json` headless, and the interactive TUI in tmux with `--no-daemon` and `notify`.
 * Screen patterns are checked against screens captured from this CLI (test/fixtures/codex).
 */

const root = path.resolve(new URL("..", import.meta.url).pathname)
const codexBin = path.join(root, "test-agents", "node_modules", ".bin", "codex")
const fixtures = path.join(root, "test", "fixtures", "codex")
const fixture = (name: string) => fs.readFileSync(path.join(fixtures, name), "utf8")

// Screen patterns, tested against the fixtures below.
/** The composer's placeholder: the TUI takes input. Also visible while a turn runs: combine with `WORKING`. */
const READY = /^› Ask Codex to do anything\s*$/m
/** The status line of a running turn (`• Working (3s • esc to interrupt)`, the bullet blinks). */
const WORKING = /^\S Working \(.*esc to interrupt\)/m
const TRUST_DIALOG = /^\s*Trust this folder\? /m
const APPROVAL_PROMPT = /^\s*Would you like to run the following command\?/m
const MODEL_MIGRATION = /^› 1\. Try new model\s*$/m
const idle = (screen: string) => READY.test(screen) && !WORKING.test(screen) && !APPROVAL_PROMPT.test(screen)

beforeAll(() => {
  if (!fs.existsSync(codexBin)) {
    throw new Error(`the codex CLI is missing at ${codexBin}: run \`npm run test-agents\` first`)
  }
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const waitFor = async <A>(what: string, probe: () => A | undefined | false, timeoutMs = 20_000, describeLast?: () => string) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${describeLast ? `:\n${describeLast()}` : ""}`)
    await sleep(100)
  }
}

/** Processes (pid and command line) whose environment holds `NAME=value`; zombies have none. */
const processesWithEnv = (entry: string): string[] => {
  const found: string[] = []
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
      if (env.includes(entry)) found.push(`${pid} ${fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ")}`)
    } catch {
      // gone, or not ours to read
    }
  }
  return found
}

interface Scratch {
  readonly dir: string
  readonly repo: string
  readonly home: string
  readonly codexHome: string
  readonly notifyLog: string
  readonly notifyScript: string
  readonly env: NodeJS.ProcessEnv
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A temp git repo with a commit, a temp HOME and CODEX_HOME, and a notify program that appends its last argument to a log. */
const makeScratch = (): Scratch => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-codex-"))
  const repo = path.join(dir, "repo")
  const home = path.join(dir, "home")
  const codexHome = path.join(home, ".codex")
  fs.mkdirSync(repo, { recursive: true })
  fs.mkdirSync(codexHome, { recursive: true })
  const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "ignore" })
  git("init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), "# scratch\n")
  git("add", "-A")
  git("-c", "user.name=warden-test", "-c", "user.email=warden@test.invalid", "commit", "-q", "-m", "initial")
  const notifyLog = path.join(dir, "notify.log")
  const notifyScript = path.join(dir, "notify.sh")
  fs.writeFileSync(notifyScript, `#!/bin/sh\nfor last; do :; done\nprintf '%s\\n' "$last" >> '${notifyLog}'\n`, { mode: 0o755 })
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(CODEX_|OPENAI_)/.test(key)) env[key] = value
  }
  Object.assign(env, { HOME: home, CODEX_HOME: codexHome, [CODEX_TEST_KEY_ENV]: "sk-warden-test" })
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return { dir, repo, home, codexHome, notifyLog, notifyScript, env }
}

const endpoint = async (script: ReadonlyArray<CodexStep>, options?: Parameters<typeof startOpenAIEndpoint>[1]) => {
  const ep = await startOpenAIEndpoint(script, options)
  cleanups.push(() => ep.close())
  return ep
}

const notifications = (scratch: Scratch): Array<Record<string, any>> =>
  fs.existsSync(scratch.notifyLog)
    ? fs
        .readFileSync(scratch.notifyLog, "utf8")
        .split("\n")
        .filter((line) => line.trim().length > 0)
        .map((line) => JSON.parse(line) as Record<string, any>)
    : []

/** No process carrying this CODEX_HOME may be left (codex, its npm wrapper, an app-server daemon, tool children). */
const expectNoCodexLeft = async (scratch: Scratch) => {
  const needle = `CODEX_HOME=${scratch.codexHome}`
  const deadline = Date.now() + 5_000
  while (processesWithEnv(needle).length > 0 && Date.now() < deadline) await sleep(100)
  expect(processesWithEnv(needle)).toEqual([])
}

interface ExecRun {
  readonly pid: number
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: () => boolean
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `codex exec ARGS` in the repo, in its own process group (killed on cleanup), stdin from `stdinFile` or /dev/null. */
const runExec = (scratch: Scratch, args: string[], stdinFile = "/dev/null"): ExecRun => {
  const stdin = fs.openSync(stdinFile, "r")
  const child = spawn(codexBin, ["exec", ...args], { cwd: scratch.repo, env: scratch.env, stdio: [stdin, "pipe", "pipe"], detached: true })
  fs.closeSync(stdin)
  let stdout = ""
  let stderr = ""
  let exited = false
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => {
      exited = true
      resolve({ code, signal })
    })
  )
  cleanups.push(() => {
    try {
      process.kill(-child.pid!, "SIGKILL")
    } catch {
      // already gone
    }
  })
  return { pid: child.pid!, stdout: () => stdout, stderr: () => stderr, exited: () => exited, done }
}

const jsonEvents = (stdout: string): Array<Record<string, any>> =>
  stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, any>)

const lastUserText = (body: any): string | undefined => {
  const messages = (body?.input ?? []).filter((item: any) => item?.type === "message" && item?.role === "user")
  return messages.at(-1)?.content?.[0]?.text
}

describe("the screen patterns against screens captured from codex 0.171.0", () => {
  const screens = ["ready.txt", "turn-done.txt", "working.txt", "trust-dialog.txt", "approval-prompt.txt", "model-migration.txt"]
  const matching = (pattern: RegExp) => screens.filter((name) => pattern.test(fixture(name)))

  it("tells the ready and idle prompt from a running turn and from dialogs", () => {
    expect(matching(READY)).toEqual(["ready.txt", "turn-done.txt", "working.txt"])
    expect(matching(WORKING)).toEqual(["working.txt"])
    expect(screens.filter((name) => idle(fixture(name)))).toEqual(["ready.txt", "turn-done.txt"])
    expect(matching(TRUST_DIALOG)).toEqual(["trust-dialog.txt"])
    expect(matching(APPROVAL_PROMPT)).toEqual(["approval-prompt.txt"])
    expect(matching(MODEL_MIGRATION)).toEqual(["model-migration.txt"])
  })

  it("keeps a notify payload of the task's turn and of codex's title turn", () => {
    const turn = JSON.parse(fixture("notify-turn.json"))
    const title = JSON.parse(fixture("notify-title.json"))
    expect(Object.keys(turn).sort()).toEqual(
      ["client", "cwd", "input-messages", "last-assistant-message", "thread-id", "turn-id", "type"].sort()
    )
    expect(turn.type).toBe("agent-turn-complete")
    expect(title.type).toBe("agent-turn-complete")
    // The title turn quotes the prompt inside its own: match input-messages exactly, not by substring.
    expect(title["input-messages"][0]).toContain(turn["input-messages"][0])
    expect(title["input-messages"][0].startsWith(CODEX_TITLE_PROMPT_PREFIX)).toBe(true)
    expect(title["thread-id"]).not.toBe(turn["thread-id"])
  })
})

describe("codex exec --json against the scripted endpoint", () => {
  it("runs the scripted shell call in the workspace-write sandbox and reports the final message and usage", async () => {
    const scratch = makeScratch()
    const ep = await endpoint(
      [
        { kind: "shell", command: "printf hi > hello.txt" },
        { kind: "text", text: "wrote hello.txt" }
      ],
      { usage: { input_tokens: 1234, output_tokens: 56 } }
    )
    writeCodexHome(scratch.codexHome, { endpointUrl: ep.url, notify: [scratch.notifyScript] })
    const lastMessage = path.join(scratch.dir, "last-message.txt")
    const started = Date.now()
    const run = runExec(scratch, [
      "--json",
      // Every key writeCodexHome writes is one this codex knows (unknown keys fail the run).
      "--strict-config",
      "-s",
      "workspace-write",
      "--skip-git-repo-check",
      "-o",
      lastMessage,
      "Write hello.txt containing hi"
    ])
    const { code } = await run.done
    const elapsed = Date.now() - started
    expect(code, run.stderr()).toBe(0)
    expect(elapsed).toBeLessThan(30_000)
    expect(fs.readFileSync(path.join(scratch.repo, "hello.txt"), "utf8")).toBe("hi")
    expect(fs.readFileSync(lastMessage, "utf8").trim()).toBe("wrote hello.txt")

    const events = jsonEvents(run.stdout())
    expect(events.map((event) => event.type)).toEqual([
      "thread.started",
      "turn.started",
      "item.started",
      "item.completed",
      "item.completed",
      "turn.completed"
    ])
    expect(typeof events[0]!.thread_id).toBe("string")
    const command = events.find((event) => event.type === "item.completed" && event.item?.type === "command_execution")
    expect(command?.item).toMatchObject({ command: expect.stringContaining("printf hi > hello.txt"), exit_code: 0, status: "completed" })
    const message = events.find((event) => event.type === "item.completed" && event.item?.type === "agent_message")
    expect(message?.item.text).toBe("wrote hello.txt")
    // turn.completed sums the usage of the turn's model requests (two here).
    const usage = events.find((event) => event.type === "turn.completed")?.usage
    expect(usage).toMatchObject({ input_tokens: 2 * 1234, output_tokens: 2 * 56 })

    // Two requests of the conversation; the second carries the shell output back.
    expect(ep.mainRequests()).toBe(2)
    const posts = ep.requests.filter((request) => request.path === "/v1/responses")
    expect(posts.map((request) => request.kind)).toEqual(["main", "main"])
    expect(lastUserText(posts[0]!.body)).toBe("Write hello.txt containing hi")
    const output = posts[1]!.body.input.find((item: any) => item.type === "function_call_output")
    expect(output?.output).toContain("Process exited with code 0")
    expect(ep.requests.filter((request) => request.path !== "/v1/responses")).toEqual([])

    // exec calls notify too (no title turn in exec).
    const payloads = await waitFor("the notify payload", () => notifications(scratch).length > 0 && notifications(scratch), 5_000)
    expect(payloads).toHaveLength(1)
    expect(payloads[0]).toMatchObject({
      type: "agent-turn-complete",
      client: "codex_exec",
      "input-messages": ["Write hello.txt containing hi"],
      "last-assistant-message": "wrote hello.txt"
    })
    await expectNoCodexLeft(scratch)
  })

  it("does not finish by itself when the model never answers, and SIGTERM ends it", async () => {
    const scratch = makeScratch()
    const ep = await endpoint([{ kind: "hang" }])
    writeCodexHome(scratch.codexHome, { endpointUrl: ep.url })
    const run = runExec(scratch, ["--json", "-s", "workspace-write", "--skip-git-repo-check", "Never answered"])
    await waitFor("the request", () => ep.mainRequests() === 1 || undefined, 20_000, run.stderr)
    await sleep(3_000)
    expect(run.exited()).toBe(false)
    expect(jsonEvents(run.stdout()).map((event) => event.type)).toEqual(["thread.started", "turn.started"])
    // SIGTERM to the npm wrapper (Node 20 spawns the native binary as its child) is forwarded to codex.
    process.kill(run.pid, "SIGTERM")
    const { signal } = await run.done
    expect(signal).toBe("SIGTERM")
    await expectNoCodexLeft(scratch)
  })

  it("reads a long prompt from a file with `-` (stdin redirected from the file, so it ends)", async () => {
    const scratch = makeScratch()
    const ep = await endpoint([{ kind: "text", text: "read it" }])
    writeCodexHome(scratch.codexHome, { endpointUrl: ep.url })
    const promptFile = path.join(scratch.dir, "prompt.md")
    const prompt = Array.from({ length: 300 }, (_, i) => `Line ${i}: "quoted" $dollar \`tick\``).join("\n") + "\nEND OF PROMPT"
    fs.writeFileSync(promptFile, prompt)
    const run = runExec(scratch, ["--json", "-s", "workspace-write", "--skip-git-repo-check", "-"], promptFile)
    const { code } = await run.done
    expect(code, run.stderr()).toBe(0)
    expect(lastUserText(ep.requests[0]!.body)?.trim()).toBe(prompt)
    expect(jsonEvents(run.stdout()).find((event) => event.item?.type === "agent_message")?.item.text).toBe("read it")
  })
})

describe("the codex TUI in tmux with --no-daemon", () => {
  const tmux = (socket: string, ...args: string[]) => {
    const result = spawnSync("tmux", ["-S", socket, ...args], { encoding: "utf8" })
    if (result.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr}`)
    return result.stdout
  }

  /** Starts `codex --no-daemon` in a tmux session on a private socket; the session is killed on cleanup. */
  const startTui = (scratch: Scratch) => {
    const socket = path.join(scratch.dir, "tmux.sock")
    const passed = ["HOME", "CODEX_HOME", CODEX_TEST_KEY_ENV].flatMap((key) => ["-e", `${key}=${scratch.env[key]}`])
    // The session's PATH comes from the tmux client (it starts the server): node must be on it for the
    // npm wrapper. The rest of codex's environment goes with -e, so the server itself carries none of it.
    const clientEnv: NodeJS.ProcessEnv = {}
    for (const [key, value] of Object.entries(process.env)) {
      if (!/^(CODEX_|OPENAI_|TMUX)/.test(key)) clientEnv[key] = value
    }
    clientEnv.PATH = `${path.dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}`
    const result = spawnSync(
      "tmux",
      ["-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "codex", "-x", "200", "-y", "50", "-c", scratch.repo, ...passed, "--", codexBin, "--no-daemon"],
      { encoding: "utf8", env: clientEnv }
    )
    if (result.status !== 0) throw new Error(`tmux new-session: ${result.stderr}`)
    const kill = () => {
      spawnSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" })
    }
    cleanups.push(kill)
    const screen = () => tmux(socket, "capture-pane", "-p", "-t", "=codex:")
    return {
      socket,
      screen,
      kill,
      waitForScreen: (what: string, test: (screen: string) => boolean, timeoutMs = 20_000) =>
        waitFor(what, () => {
          const text = screen()
          return test(text) ? text : undefined
        }, timeoutMs, screen),
      keys: (...keys: string[]) => tmux(socket, "send-keys", "-t", "=codex:", ...keys),
      /**
       * Types the prompt literally, waits until the composer shows it, then submits with Enter and
       * confirms the submission (the composer is back to its placeholder, or a turn runs).
       */
      typePrompt: async (prompt: string) => {
        tmux(socket, "send-keys", "-t", "=codex:", "-l", prompt)
        await waitFor("the prompt in the composer", () => screen().includes(`› ${prompt}`) || undefined, 5_000, screen)
        // An Enter right after the text lands inside codex's paste-burst window and becomes a newline.
        await sleep(200)
        tmux(socket, "send-keys", "-t", "=codex:", "Enter")
        // The submitted prompt stays on screen as a history cell; the composer is the last `› ` line.
        const composer = () => screen().split("\n").filter((line) => line.startsWith("› ")).at(-1)?.trimEnd()
        await waitFor("the prompt to be submitted", () => composer() !== `› ${prompt}` || undefined, 5_000, screen)
      }
    }
  }

  it("reaches the ready prompt, runs a typed prompt, notifies the turn, and leaves no process behind", async () => {
    const scratch = makeScratch()
    const ep = await endpoint([
      { kind: "shell", command: "printf hi > hello.txt" },
      { kind: "text", text: "wrote hello.txt" }
    ])
    writeCodexHome(scratch.codexHome, { endpointUrl: ep.url, trustedDirs: [scratch.repo], notify: [scratch.notifyScript] })
    const started = Date.now()
    const tui = startTui(scratch)
    const ready = await tui.waitForScreen("the ready prompt", idle)
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(ready).not.toMatch(TRUST_DIALOG)
    expect(ready).not.toMatch(MODEL_MIGRATION)

    const prompt = "Please write hello.txt in the repository"
    await tui.typePrompt(prompt)
    const isTask = (payload: Record<string, any>) =>
      Array.isArray(payload["input-messages"]) && payload["input-messages"].length === 1 && payload["input-messages"][0] === prompt
    const turn = await waitFor("the task's notify payload", () => notifications(scratch).find(isTask), 20_000, () =>
      JSON.stringify(notifications(scratch))
    )
    expect(turn).toMatchObject({ type: "agent-turn-complete", client: "codex-tui", cwd: scratch.repo, "last-assistant-message": "wrote hello.txt" })
    expect(typeof turn["turn-id"]).toBe("string")
    expect(fs.readFileSync(path.join(scratch.repo, "hello.txt"), "utf8")).toBe("hi")

    // codex's own title turn also reaches notify, in another thread, quoting the prompt inside its own.
    const title = await waitFor("the title turn's notify payload", () => notifications(scratch).find((payload) => !isTask(payload)), 10_000)
    expect(title["input-messages"][0].startsWith(CODEX_TITLE_PROMPT_PREFIX)).toBe(true)
    expect(title["input-messages"][0]).toContain(prompt)
    expect(title["last-assistant-message"]).toBe(CODEX_SIDE_ANSWER)
    expect(title["thread-id"]).not.toBe(turn["thread-id"])
    // ... and the endpoint answered it without consuming a step.
    expect(ep.mainRequests()).toBe(2)
    expect(ep.requests.filter((request) => request.kind === "side").length).toBeGreaterThanOrEqual(1)

    // The final message, then the `Worked for` separator, then the idle composer.
    await tui.waitForScreen("the idle prompt after the turn", (screen) => idle(screen) && /^• wrote hello\.txt\s*$/m.test(screen) && /^\s*Worked for /m.test(screen))

    expect(processesWithEnv(`CODEX_HOME=${scratch.codexHome}`).length).toBeGreaterThan(0)
    tui.kill()
    await expectNoCodexLeft(scratch)
    expect(fs.existsSync(path.join(scratch.codexHome, "packages"))).toBe(false)
  })

  it("asks to trust the folder when config.toml does not trust it", async () => {
    const scratch = makeScratch()
    const ep = await endpoint([])
    writeCodexHome(scratch.codexHome, { endpointUrl: ep.url })
    const tui = startTui(scratch)
    const screen = await tui.waitForScreen("the trust dialog", (text) => TRUST_DIALOG.test(text))
    const keyLine = fixture("trust-dialog.txt")
      .split("\n")
      .find((line) => TRUST_DIALOG.test(line))!
    expect(screen.split("\n").map((line) => line.trimEnd())).toContain(keyLine)
    expect(screen).toContain(scratch.repo)
    expect(screen).toMatch(/^› 1\. Trust and continue\s*$/m)
    // Enter trusts the folder, saves the trust in config.toml, and goes on to the ready prompt. A key
    // sent as soon as the dialog is drawn can be lost (seen under load): confirm, and press again.
    for (let attempt = 1; ; attempt++) {
      tui.keys("Enter")
      const left = await tui.waitForScreen("the dialog to go", (text) => !TRUST_DIALOG.test(text), 2_000).then(
        () => true,
        () => false
      )
      if (left) break
      if (attempt === 3) throw new Error(`the trust dialog ignored Enter three times:\n${tui.screen()}`)
    }
    await tui.waitForScreen("the ready prompt after trusting", idle)
    expect(fs.readFileSync(path.join(scratch.codexHome, "config.toml"), "utf8")).toContain(`[projects."${scratch.repo}"]`)
    expect(ep.mainRequests()).toBe(0)
    tui.kill()
    await expectNoCodexLeft(scratch)
  })
})
