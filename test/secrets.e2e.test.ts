import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace, type Workspace } from "./support/workspace.js"

/**
 * No secret on any command line, ever (issue 12, item 4). The built daemon holds a canary API key in
 * its environment and hands it to an agent; the key must reach the agent's environment and nowhere
 * else: not a process's argv, not tmux's environment, not a file of the workspace, not the feed, not
 * the log.
 */
const canary = `canary-${randomBytes(12).toString("hex")}`
const bead = "bd-secret"

/** Every running process whose argv holds `text`, with its argv. */
const argvHolding = (text: string): Array<string> => {
  const out: Array<string> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8")
      if (cmdline.includes(text)) out.push(`${entry}: ${cmdline.replace(/\0/g, " ")}`)
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/** Every file under `dir` whose bytes hold `text`. */
const filesHolding = (dir: string, text: string): Array<string> => {
  const out: Array<string> = []
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile() && fs.readFileSync(full).includes(text)) out.push(full)
    }
  }
  walk(dir)
  return out
}

describe("secrets", () => {
  let ws: Workspace
  let daemon: Awaited<ReturnType<Workspace["startDaemon"]>>
  let feed: WebSocket
  const feedText: Array<string> = []

  beforeAll(async () => {
    ws = makeWorkspace({}, { ANTHROPIC_API_KEY: canary })
    daemon = await ws.startDaemon()
    feed = new WebSocket(`ws://127.0.0.1:${daemon.port}/v1/feed?since=0`, { headers: { authorization: `Bearer ${daemon.token}` } })
    feed.on("message", (data) => feedText.push(data.toString()))
    await new Promise((resolve, reject) => {
      feed.on("open", resolve)
      feed.on("error", reject)
    })
  })

  afterAll(async () => {
    feed?.close()
    daemon.child.kill("SIGTERM")
    await exited(daemon.child)
    ws.cleanup()
  })

  const leaks = (): Record<string, Array<string>> => ({
    argv: argvHolding(canary),
    "tmux show-environment -g": ws.tmux("show-environment", "-g").stdout.includes(canary) ? ["yes"] : [],
    "tmux show-environment (session)": ws.tmux("show-environment", "-t", `=agent-${bead}`).stdout.includes(canary) ? ["yes"] : [],
    "workspace files": filesHolding(ws.workspace, canary),
    feed: feedText.filter((m) => m.includes(canary))
  })

  it("reaches the agent's environment, and no command line, tmux environment, workspace file, feed message or log", async () => {
    const repo = ws.makeRepo("repo-secret")
    // The agent prints nothing secret: it keeps a hash of the key it sees, in the repo (outside the workspace).
    const command = `printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -d' ' -f1 > key.sha256; echo working; sleep 600`
    const response = await fetch(`${daemon.base}/v1/dispatch`, {
      method: "POST",
      headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
      body: JSON.stringify({ bead, repo, agent: "shell", command, prompt: "x" })
    })
    expect(response.status).toBe(202)
    await eventually(() => fs.existsSync(path.join(repo, "key.sha256")) && fs.readFileSync(path.join(repo, "key.sha256"), "utf8").trim().length > 0, 20_000, "the agent's hash of its key")
    expect(fs.readFileSync(path.join(repo, "key.sha256"), "utf8").trim()).toBe(createHash("sha256").update(canary).digest("hex"))

    // While the agent runs.
    await eventually(() => ws.readRun(bead)?.lifecycle_state === "running.working", 20_000, "running")
    // The session's environment is there to be read (an empty answer would prove nothing).
    expect(ws.tmux("show-environment", "-t", `=agent-${bead}`).status).toBe(0)
    expect(leaks()).toEqual({ argv: [], "tmux show-environment -g": [], "tmux show-environment (session)": [], "workspace files": [], feed: [] })
    // The environment file went away before the agent started.
    expect(fs.readdirSync(path.join(ws.workspace, "state", "watch")).filter((f) => f.endsWith(".env"))).toEqual([])

    // And after it ended.
    const cancelled = await fetch(`${daemon.base}/v1/sessions/${bead}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
      body: "{}"
    })
    expect(cancelled.status).toBeLessThan(300)
    await eventually(() => ws.readRun(bead)?.lifecycle_state === "cancelled", 20_000, "cancelled")
    await eventually(() => feedText.some((m) => m.includes('"cancelled"')), 10_000, "the end on the feed")
    expect(fs.existsSync(path.join(ws.workspace, "state", "warden.log"))).toBe(true)
    // The session is gone now: its environment is not asked again.
    const { "tmux show-environment (session)": _gone, ...after } = leaks()
    expect(after).toEqual({ argv: [], "tmux show-environment -g": [], "workspace files": [], feed: [] })
  })
})
