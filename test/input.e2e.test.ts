import { spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { cliEntry, eventually, exited, makeWorkspace, useDaemon } from "./support/workspace.js"

/**
 * What is typed into agents, tried as a hostile local process and a careless
 * coordinator would: options passed as keys, control characters in text and
 * prompts, beads whose session names collide, a planted tmux socket. The
 * built daemon, its HTTP API, its terminal stream and the CLI only.
 */
const ws = makeWorkspace()
const daemon = useDaemon(ws, "--concurrency", "6")
const api = daemon.api

/** An agent that reads lines without echo and appends each to got.txt in its repo, until killed. */
const READER = `stty -echo; echo reader-ready; while IFS= read -r l; do printf '%s\\n' "$l" >> got.txt; done`

const repos = new Map<string, string>()
const got = (bead: string): string => {
  try {
    return fs.readFileSync(path.join(repos.get(bead)!, "got.txt"), "utf8")
  } catch {
    return ""
  }
}

const startReader = async (bead: string) => {
  const repo = ws.makeRepo(`repo-${bead}`)
  repos.set(bead, repo)
  const out = await ws.warden("dispatch", bead, "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", READER)
  expect(out.status, out.stderr).toBe(0)
  await eventually(() => ws.readRun(bead)?.lifecycle_state === "running.working", 20_000, `${bead} running`)
  const name = ws.readRun(bead).session_name as string
  await eventually(() => ws.tmux("capture-pane", "-p", "-t", `=${name}:`).stdout.includes("reader-ready"), 10_000, `${bead}'s reader ready`)
  return name
}

/** Lets what was sent reach (or not reach) the reader before looking. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 700))

beforeAll(async () => {
  await Promise.all(["bd-in-a", "bd-in-victim"].map(startReader))
}, 60_000)

describe("keys are tmux key names, never options of send-keys", () => {
  it("the API refuses keys that would be read as options (-t other, -N 2000), naming the key, and types nothing", async () => {
    const hijack = await api("POST", "/v1/sessions/bd-in-a/input", { keys: ["-t", "agent-bd-in-victim", "P", "W", "N", "Enter"] })
    expect(hijack.status).toBe(422)
    expect(hijack.json.error).toMatch(/"-t"/)
    const repeat = await api("POST", "/v1/sessions/bd-in-a/input", { keys: ["-N", "2000", "x"] })
    expect(repeat.status).toBe(422)
    expect(repeat.json.error).toMatch(/"-N"/)
    for (const key of ["-X", "-R", "-l", "--", "Enter;", "F13", "C-~", "MouseDown1Pane", "0x41"]) {
      const refused = await api("POST", "/v1/sessions/bd-in-a/input", { keys: [key, "Enter"] })
      expect(refused.status, `${key}: ${JSON.stringify(refused.json)}`).toBe(422)
      expect(refused.json.error).toContain(JSON.stringify(key))
    }
    await settle()
    expect(got("bd-in-victim")).toBe("")
    expect(got("bd-in-a")).toBe("")
  })

  it("valid key names still work through the API", async () => {
    const ok = await api("POST", "/v1/sessions/bd-in-a/input", { keys: ["h", "i", "Space", "-", "t", "BSpace", "x", "Enter"] })
    expect(ok.status, JSON.stringify(ok.json)).toBe(202)
    await eventually(() => got("bd-in-a").includes("hi -x\n"), 10_000, "the keys typed")
  })

  it("warden send --key refuses an option-like key with exit 2, and the other session lives on", async () => {
    const out = await ws.warden("send", "bd-in-a", "--key", "-t", "--key", "agent-bd-in-victim", "--key", "C-d")
    expect(out.status, out.stdout + out.stderr).toBe(2)
    expect(out.stderr).toMatch(/"-t"/)
    await settle()
    expect(ws.tmux("has-session", "-t", "=agent-bd-in-victim").status).toBe(0)
    expect(ws.readRun("bd-in-victim").lifecycle_state).toBe("running.working")
    const keys = await ws.warden("send", "bd-in-a", "--key", "o", "--key", "k", "--key", "Enter")
    expect(keys.status, keys.stderr).toBe(0)
    await eventually(() => got("bd-in-a").includes("ok\n"), 10_000, "the CLI's keys typed")
  })
})

describe("control characters are never typed as text", () => {
  it("the API refuses ESC (a bracketed-paste end), ETX and DEL in text with 422 naming the character and its position", async () => {
    const cases: Array<[string, RegExp]> = [
      ["safe\u001b[201~!rm -rf x", /U\+001B \(ESC\) at character 5/],
      ["x\u0003", /U\+0003 \(ETX\) at character 2/],
      ["ab\u007f", /U\+007F \(DEL\) at character 3/],
      ["\u009b31m", /U\+009B \(CSI\) at character 1/]
    ]
    for (const [text, reason] of cases) {
      const refused = await api("POST", "/v1/sessions/bd-in-a/input", { text })
      expect(refused.status, text).toBe(422)
      expect(refused.json.error).toMatch(reason)
    }
    await settle()
    expect(got("bd-in-a")).not.toMatch(/safe|rm -rf|\u0003|\u007f/)
  })

  it("CR and CRLF are line ends: normalised to LF, tabs kept", async () => {
    const sent = await api("POST", "/v1/sessions/bd-in-a/input", { text: "crlf-one\r\ncr-two\rtab\there" })
    expect(sent.status, JSON.stringify(sent.json)).toBe(202)
    await eventually(() => got("bd-in-a").includes("crlf-one\ncr-two\ntab\there\n"), 10_000, "the lines typed")
  })

  it("warden send refuses a control character with exit 2 naming it", async () => {
    const out = await ws.warden("send", "bd-in-a", "nice\u001b[201~evil")
    expect(out.status, out.stdout + out.stderr).toBe(2)
    expect(out.stderr).toMatch(/U\+001B \(ESC\) at character 5/)
    await settle()
    expect(got("bd-in-a")).not.toContain("evil")
  })

  it("the terminal stream's input is checked the same way: refused with an error frame, nothing typed", async () => {
    const socket = new WebSocket(`${daemon.base.replace("http", "ws")}/v1/sessions/bd-in-a/terminal?input=1`, { headers: { authorization: `Bearer ${daemon.token}` } })
    const errors: Array<string> = []
    socket.on("message", (data, binary) => {
      if (!binary) errors.push(data.toString())
    })
    await new Promise((resolve, reject) => {
      socket.once("open", resolve)
      socket.once("error", reject)
    })
    socket.send("stream-evil\u001b[201~\n")
    await eventually(() => errors.length > 0, 10_000, "the stream's refusal")
    expect(JSON.parse(errors[0]!).error).toMatch(/U\+001B \(ESC\) at character 12/)
    socket.send("from-stream\r")
    await eventually(() => got("bd-in-a").includes("from-stream\n"), 10_000, "the stream's text typed")
    socket.close()
    expect(got("bd-in-a")).not.toContain("stream-evil")
  })

  it("a prompt typed in keys mode has its control characters dropped", async () => {
    const repo = ws.makeRepo("repo-bd-in-prompt")
    // A TUI-like agent: shows its prompt, reads one line, writes it to prompt.txt, shows the prompt again.
    const command = `printf 'demo> '; IFS= read -r l; printf '%s' "$l" > prompt.txt; printf '\\ndemo> '; sleep 600`
    const dispatched = await api("POST", "/v1/dispatch", {
      bead: "bd-in-prompt",
      repo,
      agent: "shell-tui",
      command,
      prompt: "do\u001b[201~ the\u0003 task\u0004 now"
    })
    expect(dispatched.status, JSON.stringify(dispatched.json)).toBe(202)
    const file = path.join(repo, "prompt.txt")
    await eventually(() => fs.existsSync(file), 20_000, "the prompt typed and read")
    const typed = fs.readFileSync(file, "utf8")
    expect(typed).toContain("task now")
    expect(typed).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/)
    await api("POST", "/v1/sessions/bd-in-prompt/cancel", {})
  })
})

describe("what an operator typed is recorded as its length, never its text", () => {
  it("warden send and the input API leave no trace of the text in the signal log or anywhere in the workspace", async () => {
    const secret = "hunter2-Secret-Passw0rd"
    const viaCli = await ws.warden("send", "bd-in-a", secret)
    expect(viaCli.status, viaCli.stderr).toBe(0)
    expect(viaCli.stdout).not.toContain(secret)
    const viaApi = await api("POST", "/v1/sessions/bd-in-a/input", { text: `${secret}-api` })
    expect(viaApi.status).toBe(202)
    await eventually(() => got("bd-in-a").includes(`${secret}-api\n`), 10_000, "both typed")
    const signals = fs.readFileSync(path.join(ws.workspace, "state", "watch", "bd-in-a.signals.jsonl"), "utf8")
    const inputs = signals.trim().split("\n").map((line) => JSON.parse(line)).filter((doc) => doc.type === "input")
    expect(inputs.some((doc) => doc.via === "cli" && doc.chars === secret.length)).toBe(true)
    expect(inputs.some((doc) => doc.via === "api" && doc.chars === secret.length + 4)).toBe(true)
    expect(inputs.every((doc) => doc.text === undefined)).toBe(true)
    // Single characters pressed as keys could spell a secret too: only named keys are kept.
    expect(inputs.some((doc) => JSON.stringify(doc.keys) === JSON.stringify(["<char>", "<char>", "Space", "<char>", "<char>", "BSpace", "<char>", "Enter"]))).toBe(true)
    const grep = spawnSync("grep", ["-r", "-l", "-F", "hunter2", ws.workspace], { encoding: "utf8" })
    expect(grep.stdout).toBe("")
  })

  it("a codex turn whose input is an operator's answer is still told from codex's own turns, without the text on disk", async () => {
    const attempt = ws.readRun("bd-in-a").attempt_id as string
    const notify = (inputs: string[]) =>
      spawnSync(process.execPath, [cliEntry, "--workspace", ws.workspace, "--config", ws.configFile, "signal", "--from", "codex-notify", JSON.stringify({
        type: "agent-turn-complete",
        "turn-id": "t1",
        "input-messages": inputs,
        "last-assistant-message": "Which branch should I use?"
      })], { encoding: "utf8", env: { ...process.env, WARDEN_BEAD: "bd-in-a", WARDEN_ATTEMPT: attempt, WARDEN_WORKSPACE: undefined, WARDEN_CONFIG: undefined } })
    const signalsFile = path.join(ws.workspace, "state", "watch", "bd-in-a.signals.jsonl")
    const notifies = () => fs.readFileSync(signalsFile, "utf8").trim().split("\n").map((line) => JSON.parse(line)).filter((doc) => doc.source === "notify")
    // A side turn (a title for the answer, quoting it inside a longer input) is not the task's.
    const side = notify([`Write a title for: hunter2-Secret-Passw0rd`])
    expect(side.stderr).toMatch(/not the task's/)
    expect(notifies()).toEqual([])
    // The answer's own turn counts, white space as codex shows it back.
    const answered = notify(["  hunter2-Secret-Passw0rd "])
    expect(answered.status, answered.stderr).toBe(0)
    expect(notifies()).toMatchObject([{ status: "waiting", source: "notify" }])
    expect(JSON.stringify(notifies()[0].payload)).toContain("<operator input, 26 characters>")
    expect(spawnSync("grep", ["-r", "-l", "-F", "hunter2", ws.workspace], { encoding: "utf8" }).stdout).toBe("")
  })
})

describe("session names are one to one", () => {
  it("col.x and col_x run at once in sessions of their own; warden send col.x reaches only col.x", async () => {
    const [dotted, underscored] = await Promise.all([startReader("col.x"), startReader("col_x")])
    expect(dotted).toBe("agent-col+x")
    expect(underscored).toBe("agent-col_x")
    const sessions = ws.tmux("list-sessions", "-F", "#{session_name}").stdout.split("\n")
    expect(sessions).toEqual(expect.arrayContaining(["agent-col+x", "agent-col_x"]))
    const out = await ws.warden("send", "col.x", "for-the-dotted-one")
    expect(out.status, out.stderr).toBe(0)
    const viaApi = await api("POST", "/v1/sessions/col_x/input", { text: "for-the-underscored-one" })
    expect(viaApi.status).toBe(202)
    await eventually(() => got("col.x").includes("for-the-dotted-one\n") && got("col_x").includes("for-the-underscored-one\n"), 10_000, "both typed")
    await settle()
    expect(got("col.x")).toBe("for-the-dotted-one\n")
    expect(got("col_x")).toBe("for-the-underscored-one\n")
    expect(ws.readRun("col.x").session_name).toBe("agent-col+x")
    for (const bead of ["col.x", "col_x"]) await api("POST", `/v1/sessions/${bead}/cancel`, {})
    await eventually(() => ["col.x", "col_x"].every((bead) => ws.readRun(bead)?.lifecycle_state === "cancelled"), 20_000, "both cancelled")
    expect(ws.tmux("has-session", "-t", "=agent-col+x").status).not.toBe(0)
  })
})

describe("the agents' tmux socket is checked before it is used", () => {
  const planted = makeWorkspace()
  const servers: Array<net.Server> = []
  afterAll(() => {
    for (const server of servers) server.close()
    planted.cleanup()
  })

  const plantSocket = async (file: string, uid: number) => {
    const server = net.createServer((connection) => connection.destroy())
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(file, resolve))
    fs.chownSync(file, uid, uid)
  }

  it("a socket that another user planted: the daemon refuses to start, send and attach refuse, preflight fails, naming the socket", async () => {
    // The workspace's socket, created first by someone else (uid 65534, nobody).
    await plantSocket(planted.socket, 65534)
    const started = await planted.warden("daemon", "--port", "0")
    expect(started.status, started.stdout + started.stderr).toBe(2)
    expect(started.stderr).toContain(planted.socket)
    expect(started.stderr).toMatch(/belongs to uid 65534/)
    const send = await planted.warden("send", "bd-any", "hello")
    expect(send.status).toBe(2)
    expect(send.stderr).toMatch(/belongs to uid 65534/)
    const attach = await planted.warden("attach", "bd-any")
    expect(attach.status).toBe(2)
    expect(attach.stderr).toMatch(/belongs to uid 65534/)
    const repo = planted.makeRepo("repo-planted")
    const preflight = await planted.warden("preflight", "--bead", "bd-planted", "--repo", repo, "--agent", "shell", "--command", "true", "--prompt", "x", "--json")
    expect(preflight.stdout + preflight.stderr).toMatch(/tmux-socket/)
    expect(preflight.stdout + preflight.stderr).toMatch(/belongs to uid 65534/)
  })

  it("a symlink as the socket, and a directory others may write without the sticky bit, are refused", async () => {
    const linkDir = path.join(planted.dir, "links")
    fs.mkdirSync(linkDir, { mode: 0o700 })
    const target = path.join(linkDir, "real.sock")
    await plantSocket(target, process.getuid!())
    const link = path.join(linkDir, "agents.sock")
    fs.symlinkSync(target, link)
    const linked = makeWorkspace({ tmuxSocket: link })
    const shared = path.join(planted.dir, "shared")
    fs.mkdirSync(shared)
    fs.chmodSync(shared, 0o777)
    const open = makeWorkspace({ tmuxSocket: path.join(shared, "agents.sock") })
    try {
      const a = await linked.warden("daemon", "--port", "0")
      expect(a.status).toBe(2)
      expect(a.stderr).toMatch(/is a symlink/)
      const b = await open.warden("send", "bd-any", "x")
      expect(b.status).toBe(2)
      expect(b.stderr).toMatch(/writable by others .*without the sticky bit/)
      // A sticky world-writable directory (as /tmp) is fine for a socket that is ours, or not there yet.
      fs.chmodSync(shared, 0o1777)
      const c = await open.warden("send", "bd-any", "x")
      expect(c.stderr).not.toMatch(/refusing to use/)
    } finally {
      for (const w of [linked, open]) {
        w.cleanup()
        fs.rmSync(w.dir, { recursive: true, force: true })
      }
    }
  })
})
