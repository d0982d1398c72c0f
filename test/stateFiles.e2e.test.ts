import { type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { eventually, makeWorkspace, type Workspace } from "./support/workspace.js"
import { processesWithEnv } from "./support/processes.js"

/**
 * Corrupt state files, as a crash or a full disk leaves them: the built daemon
 * decodes every one at start-up, moves a bad one aside, says so, and rebuilds
 * what it held from the other files.
 */
const started: Array<{ ws: Workspace; child: ChildProcess }> = []

afterEach(async () => {
  const ended = started.splice(0)
  // Every daemon first (a workspace may have had several), then each workspace once.
  for (const { child } of ended) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await new Promise((resolve) => child.once("exit", resolve))
    }
  }
  for (const ws of new Set(ended.map((entry) => entry.ws))) ws.cleanup()
})

const daemonOf = async (ws: Workspace, ...extra: string[]) => {
  const daemon = await ws.startDaemon(...extra)
  started.push({ ws, child: daemon.child })
  const api = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${daemon.base}${route}`, {
      method,
      headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, json: (await response.json().catch(() => null)) as any }
  }
  return { ...daemon, api }
}

const killHard = async (child: ChildProcess) => {
  child.kill("SIGKILL")
  await new Promise((resolve) => child.once("exit", resolve))
}

const state = (ws: Workspace, ...parts: string[]) => path.join(ws.workspace, "state", ...parts)

describe("corrupt state files", () => {
  it("a corrupt queue.json is quarantined at start-up, named in /healthz, and the queue rebuilt from the queued beads' snapshots", async () => {
    const ws = makeWorkspace()
    const repoA = ws.makeRepo("repo-a")
    const repoB = ws.makeRepo("repo-b")
    let daemon = await daemonOf(ws, "--concurrency", "1")
    const dispatch = (bead: string, repo: string, command: string) =>
      daemon.api("POST", "/v1/dispatch", { bead, repo, agent: "shell", prompt: "x", command })
    expect((await dispatch("bd-qa", repoA, "sleep 3; echo a > a.txt; git add a.txt; git commit -qm a")).status).toBe(202)
    expect((await dispatch("bd-qb", repoB, "echo b > b.txt; git add b.txt; git commit -qm b")).status).toBe(202)
    await eventually(() => ws.readRun("bd-qa")?.lifecycle_state?.startsWith("running"), 20_000, "bd-qa running")
    expect(ws.readRun("bd-qb")?.lifecycle_state).toBe("queued")
    await killHard(daemon.child)
    fs.writeFileSync(state(ws, "queue.json"), '{"seq": 2, "items": [{"bead": "bd-qb", "prof')

    daemon = await daemonOf(ws, "--concurrency", "1")
    const health = await (await fetch(`${daemon.base}/healthz`)).json()
    expect(health.quarantined).toHaveLength(1)
    const q = health.quarantined[0]
    expect(q.file).toBe(state(ws, "queue.json"))
    expect(q.moved_to).toMatch(/queue\.json\.corrupt-/)
    expect(q.reason).toMatch(/not JSON/)
    expect(fs.readFileSync(q.moved_to, "utf8")).toContain('"prof')
    expect(fs.readFileSync(state(ws, "warden.log"), "utf8")).toContain("state file quarantined")
    // The queued bead came back through the queue: it runs once the first is done.
    await eventually(() => ws.readRun("bd-qb")?.status === "done", 40_000, "bd-qb done")
    await eventually(() => ws.readRun("bd-qa")?.status === "done", 20_000, "bd-qa done")
    // Its slot was freed as it was cleaning up, not before.
    // At concurrency 1, bd-qb started only once bd-qa's agent had finished.
    expect(Date.parse(ws.readRun("bd-qb").started_at_precise)).toBeGreaterThanOrEqual(Date.parse(ws.readRun("bd-qa").finished_at_precise))
    // And the daemon takes new work.
    const repoC = ws.makeRepo("repo-c")
    expect((await dispatch("bd-qc", repoC, "echo c > c.txt; git add c.txt; git commit -qm c")).status).toBe(202)
    await eventually(() => ws.readRun("bd-qc")?.status === "done", 30_000, "bd-qc done")
  }, 120_000)

  it("a dispatch the queue cannot take creates nothing: no snapshot, no records, no session, not after a restart either", async () => {
    const ws = makeWorkspace()
    const repo = ws.makeRepo("repo-f")
    let daemon = await daemonOf(ws)
    // The queue breaks while the daemon runs (a full disk, an operator's editor). Nothing rewrites it
    // behind us: the daemon writes the queue only when it changes it.
    fs.writeFileSync(state(ws, "queue.json"), "{")
    expect((await daemon.api("GET", "/v1/queue")).status).not.toBe(200)
    const refused = await daemon.api("POST", "/v1/dispatch", { bead: "bd-fail", repo, agent: "shell", prompt: "x", command: "echo ran > ran.txt" })
    // The daemon cannot queue now, and says why, naming the file.
    expect(refused.status).toBe(503)
    expect(refused.json.error).toMatch(/^the daemon cannot do this now: .*queue\.json/)
    expect(fs.existsSync(state(ws, "snapshots", "bd-fail.json"))).toBe(false)
    expect(fs.existsSync(ws.runFile("bd-fail"))).toBe(false)
    expect((await daemon.api("GET", "/v1/sessions/bd-fail")).status).toBe(404)
    await killHard(daemon.child)
    daemon = await daemonOf(ws)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    expect(fs.existsSync(ws.runFile("bd-fail"))).toBe(false)
    expect(fs.existsSync(path.join(repo, "ran.txt"))).toBe(false)
  }, 60_000)

  it("a corrupt snapshot of a running bead: quarantined, its session ended, its records finalized saying why; a new dispatch runs alone", async () => {
    const ws = makeWorkspace()
    const repo = ws.makeRepo("repo-s")
    let daemon = await daemonOf(ws)
    const body = { bead: "bd-snap", repo, agent: "shell", prompt: "x", command: "sleep 60" }
    expect((await daemon.api("POST", "/v1/dispatch", body)).status).toBe(202)
    await eventually(() => ws.readRun("bd-snap")?.lifecycle_state?.startsWith("running"), 20_000, "bd-snap running")
    const attemptId = ws.readRun("bd-snap").attempt_id as string
    const session = ws.readRun("bd-snap").session_name as string
    await killHard(daemon.child)
    fs.writeFileSync(state(ws, "snapshots", "bd-snap.json"), '{"version":1,"bead":"bd-snap","request":{"bea')

    daemon = await daemonOf(ws)
    const health = await (await fetch(`${daemon.base}/healthz`)).json()
    expect(health.quarantined.map((q: any) => q.file)).toEqual([state(ws, "snapshots", "bd-snap.json")])
    const run = ws.readRun("bd-snap")
    expect(run).toMatchObject({ status: "failed", attempt_id: attemptId })
    expect(ws.readResult("bd-snap").reason).toMatch(/snapshot .*bd-snap\.json was corrupt .*moved to .*corrupt-.*it ended the tmux session/)
    expect(ws.tmux("has-session", "-t", `=${session}`).status).not.toBe(0)
    // Nothing of the old agent runs on unseen.
    const survivors = processesWithEnv("WARDEN_ATTEMPT", attemptId)
    expect(survivors).toEqual([])
    // Cancel names what happened instead of pretending it runs.
    const cancel = await daemon.api("POST", "/v1/sessions/bd-snap/cancel")
    expect(cancel.status).toBe(409)
    expect(cancel.json.error).toMatch(/not running/)
    // A new dispatch runs, alone.
    const again = await daemon.api("POST", "/v1/dispatch", { ...body, command: "echo s > s.txt; git add s.txt; git commit -qm s" })
    expect(again.status).toBe(202)
    await eventually(() => ws.readRun("bd-snap")?.status === "done", 30_000, "the new dispatch done")
    expect(ws.readRun("bd-snap").attempt_id).not.toBe(attemptId)
  }, 90_000)
})
