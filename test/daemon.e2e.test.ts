import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cliEntry, eventually, exited, makeWorkspace, useDaemon } from "./support/workspace.js"

/**
 * The built daemon as a child process, used only through its CLI and HTTP
 * API, as an operator would.
 */
const ws = makeWorkspace()
const daemon = useDaemon(ws, "--concurrency", "1")
const api = daemon.api

describe("the daemon", () => {
  it("creates its API token with file mode 0600, and answers /healthz without it", async () => {
    expect(fs.statSync(path.join(ws.workspace, "state", "api-token")).mode & 0o777).toBe(0o600)
    const health = await fetch(`${daemon.base}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ ok: true, concurrency: 1 })
  })

  it("runs queued beads by priority, then first come first served, one at a time", async () => {
    const repos = ["p-first", "p-low", "p-high"].map((name) => ws.makeRepo(`repo-${name}`))
    // The first takes the only slot; the other two wait and must start by priority, not arrival.
    // It holds the slot until the test opens its gate, once both others are queued (a fixed sleep raced the CLI under load).
    const gate = path.join(ws.dir, "p-first-go")
    const first = await ws.warden("dispatch", "bd-p-first", "--repo", repos[0]!, "--agent", "shell", "--command", `while [ ! -f ${gate} ]; do sleep 0.1; done; echo a > a.txt`, "--prompt", "x", "--priority", "2")
    expect(first.status, first.stderr).toBe(0)
    expect(first.stdout).toContain("queued with the daemon")
    await ws.warden("dispatch", "bd-p-low", "--repo", repos[1]!, "--agent", "shell", "--command", "echo b > b.txt", "--prompt", "x", "--priority", "4")
    const high = ws.start("dispatch", "bd-p-high", "--repo", repos[2]!, "--agent", "shell", "--command", "echo c > c.txt", "--prompt", "x", "--priority", "0", "--wait")
    await eventually(() => ws.readRun("bd-p-high")?.lifecycle_state === "queued" && ws.readRun("bd-p-low")?.lifecycle_state === "queued", 20_000, "both others queued")
    fs.writeFileSync(gate, "")
    expect(await exited(high), high.output()).toBe(0)
    expect(high.output()).toMatch(/bd-p-high {2}#1 {2}running\.working/)
    await eventually(() => ws.readRun("bd-p-low")?.lifecycle_state === "done", 30_000, "the low-priority bead done")
    const started = (bead: string) => Date.parse(ws.readRun(bead).started_at_precise)
    expect(started("bd-p-first")).toBeLessThan(started("bd-p-high"))
    expect(started("bd-p-high")).toBeLessThan(started("bd-p-low"))
    // One slot: the high-priority bead started only after the first one released it.
    expect(started("bd-p-high")).toBeGreaterThanOrEqual(Date.parse(ws.readRun("bd-p-first").finished_at_precise))
    expect(ws.readRun("bd-p-high").supervisor).toMatchObject({ kind: "daemon", pid: daemon.child.pid })
    const queue = await api("GET", "/v1/queue")
    expect(queue).toMatchObject({ status: 200, json: { queue: [] } })
  })

  it("refuses requests without the right token, from a foreign origin, and bad requests, with a reason and no change", async () => {
    const repo = ws.makeRepo("repo-refusals")
    // The records on disk (an atomic write's temporary file, from a record still being written, is not one).
    const records = () => fs.readdirSync(path.join(ws.workspace, "state", "runs")).filter((name) => !name.startsWith(".")).sort()
    const before = records()
    const noToken = await fetch(`${daemon.base}/v1/sessions`)
    expect(noToken.status).toBe(401)
    expect((await api("GET", "/v1/sessions", undefined, { authorization: "Bearer wrong" })).status).toBe(401)
    expect((await api("GET", "/v1/sessions", undefined, { origin: "http://evil.example" })).status).toBe(403)
    const cases: Array<[unknown, number, RegExp]> = [
      ["{not json", 400, /not JSON/],
      [{ bead: "../x", repo, agent: "shell" }, 422, /bead id must match/],
      [{ bead: "bd-r1", repo, agent: "nope", prompt: "x" }, 422, /unknown agent profile "nope"/],
      [{ bead: "bd-r2", repo: "/usr", agent: "shell", prompt: "x", command: "true" }, 422, /not under an allowed root/],
      [{ bead: "bd-r3", repo, agent: "shell", prompt: "x", priority: 9 }, 422, /priority/],
      [{ bead: "bd-r4", repo, agent: "shell", prompt: "x", surprise: true }, 422, /surprise/],
      ["x".repeat(70 * 1024), 413, /bytes/]
    ]
    for (const [body, status, reason] of cases) {
      const response = await api("POST", "/v1/dispatch", body)
      expect(response.status, JSON.stringify(response.json)).toBe(status)
      expect(response.json.error).toMatch(reason)
    }
    expect((await api("GET", "/v1/sessions/..%2Fx")).status).toBe(400)
    expect((await api("GET", "/v1/sessions/bd-never")).status).toBe(404)
    expect((await api("POST", "/v1/sessions/bd-never/cancel", {})).status).toBe(404)
    expect((await api("DELETE", "/v1/dispatch")).status).toBe(405)
    expect((await api("GET", "/v1/nothing")).status).toBe(404)
    expect(records()).toEqual(before)
  })

  it("logs, retry and tail through the CLI", async () => {
    const repo = ws.makeRepo("repo-clients")
    await ws.warden("dispatch", "bd-clients", "--repo", repo, "--agent", "shell", "--command", "echo hello from the agent; echo x >> x.txt", "--prompt", "x", "--wait")
    const logs = await ws.warden("logs", "bd-clients")
    expect(logs.status, logs.stderr).toBe(0)
    expect(logs.stdout).toContain("hello from the agent")
    const firstAttemptId = ws.readRun("bd-clients").attempt_id
    const retried = await ws.warden("retry", "bd-clients", "--json")
    expect(retried.status, retried.stderr).toBe(0)
    expect(JSON.parse(retried.stdout)).toMatchObject({ bead: "bd-clients" })
    await eventually(() => ws.readRun("bd-clients")?.attempt_id !== firstAttemptId && ws.readRun("bd-clients")?.status === "done", 20_000, "the retry done")
    // The feed from the start, for the queue topic: both dispatches of the bead are in it.
    const tail = ws.start("tail", "--topics", "queue", "--since", "0", "--json")
    await eventually(() => tail.output().split("\n").filter((line) => line.includes('"bd-clients"') && line.includes("queue.enqueued")).length >= 2, 10_000, "the queue events")
    tail.kill("SIGINT")
    await exited(tail)
    const lines = tail.output().trim().split("\n").map((line) => JSON.parse(line))
    expect(lines[0]).toMatchObject({ v: 1, type: "hello", topics: ["queue"] })
    expect(lines.filter((e) => e.topic !== undefined).every((e) => e.topic === "queue")).toBe(true)
  })

  it("drain mode admits nothing new until it is turned off", async () => {
    const on = await ws.warden("drain", "--json")
    expect(on.status, on.stderr).toBe(0)
    expect(JSON.parse(on.stdout)).toEqual({ draining: true })
    expect(await (await fetch(`${daemon.base}/healthz`)).json()).toMatchObject({ draining: true })
    const repo = ws.makeRepo("repo-drain")
    await ws.warden("dispatch", "bd-drain", "--repo", repo, "--agent", "shell", "--command", "echo d > d.txt", "--prompt", "x")
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(ws.readRun("bd-drain").lifecycle_state).toBe("queued")
    expect((await api("GET", "/v1/queue")).json.queue.map((item: { bead: string }) => item.bead)).toEqual(["bd-drain"])
    expect((await api("POST", "/v1/drain", { on: "yes" })).status).toBe(422)
    expect((await ws.warden("drain", "--off")).status).toBe(0)
    await eventually(() => ws.readRun("bd-drain")?.lifecycle_state === "done", 20_000, "admitted after the drain")
  })

  it("a dispatch the daemon refuses as invalid is a usage error (exit 2) naming the field", async () => {
    const repo = ws.makeRepo("repo-invalid")
    const out = await ws.warden("dispatch", "bd-invalid", "--repo", repo, "--agent", "shell", "--command", "true", "--max-retries", "0")
    expect(out.status).toBe(2)
    expect(out.stderr).toContain("the daemon refused (422): maxRetries: Expected a number between 1 and 20, actual 0")
    const unknownProfile = await ws.warden("dispatch", "bd-invalid", "--repo", repo, "--agent", "no-such-profile", "--prompt", "x")
    expect(unknownProfile.status).toBe(2)
  })

  it("a second daemon for the same workspace is refused", async () => {
    const second = await ws.warden("daemon", "--port", "0")
    expect(second.status).not.toBe(0)
    expect(second.stderr).toMatch(/another warden daemon \(pid \d+\) runs for this workspace/)
  })

  it("cancels through the API when the CLI asks, and the records say cancelled", async () => {
    const repo = ws.makeRepo("repo-dcancel")
    await ws.warden("dispatch", "bd-dcancel", "--repo", repo, "--agent", "shell", "--command", "echo busy; sleep 600", "--prompt", "x")
    await eventually(() => ws.readRun("bd-dcancel")?.lifecycle_state === "running.working", 20_000, "running")
    const out = await ws.warden("cancel", "bd-dcancel")
    expect(out.status, out.stderr).toBe(0)
    expect(out.stdout).toContain("asked the daemon")
    await eventually(() => ws.readRun("bd-dcancel")?.lifecycle_state === "cancelled", 20_000, "cancelled")
    expect(ws.readRun("bd-dcancel").outcome).toBe("cancelled")
    expect(ws.tmux("has-session", "-t", "=agent-bd-dcancel").status).not.toBe(0)
    expect((await api("POST", "/v1/sessions/bd-dcancel/cancel", {})).status).toBe(409)
  })
})

describe("the daemon across a crash and a restart", () => {
  const ws2 = makeWorkspace()
  const start = () => {
    const child = spawn(process.execPath, [cliEntry, "--workspace", ws2.workspace, "--config", ws2.configFile, "daemon", "--port", "0", "--concurrency", "2"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    daemons.push(child)
    return { child, output: () => output }
  }
  const ready = (d: { output: () => string }) => eventually(() => /session\(s\) restored/.test(d.output()), 20_000, "the daemon ready")
  afterAll(() => ws2.cleanup())

  const daemons: ChildProcess[] = []
  afterAll(() => {
    for (const child of daemons) child.kill("SIGKILL")
  })

  it("kill -9 while two sessions run: the restart re-adopts both, learns what happened meanwhile, and both finish with complete records", async () => {
    let d = start()
    await ready(d)
    const gates = ["a", "b"].map((name) => path.join(ws2.dir, `gate-${name}`))
    for (const [i, name] of ["a", "b"].entries()) {
      const repo = ws2.makeRepo(`repo-k${name}`)
      const out = await ws2.warden("dispatch", `bd-k${name}`, "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", `while [ ! -f ${gates[i]} ]; do sleep 0.1; done; echo ${name} > ${name}.txt`)
      expect(out.status, out.stderr).toBe(0)
    }
    await eventually(() => ["bd-ka", "bd-kb"].every((bead) => ws2.readRun(bead)?.lifecycle_state === "running.working"), 20_000, "both running")
    d.child.kill("SIGKILL")
    await exited(d.child)
    // bd-ka finishes while no daemon runs; ps does not finalize it behind the daemon's back.
    fs.writeFileSync(gates[0]!, "")
    await eventually(() => fs.existsSync(path.join(ws2.dir, "repo-ka", "a.txt")), 10_000, "bd-ka's agent done")
    const ps = JSON.parse((await ws2.warden("ps", "--json")).stdout)
    expect(ps.find((r: { bead: string }) => r.bead === "bd-ka")).toMatchObject({ status: "running", liveness: "awaiting-daemon" })
    d = start()
    await ready(d)
    expect(d.output()).toContain("2 session(s) restored")
    // The seed's status is final from `cleaning` on; the lifecycle ends two states later.
    await eventually(() => ws2.readRun("bd-ka")?.lifecycle_state === "done", 20_000, "bd-ka done after the restart")
    fs.writeFileSync(gates[1]!, "")
    await eventually(() => ws2.readRun("bd-kb")?.lifecycle_state === "done", 20_000, "bd-kb done")
    for (const bead of ["bd-ka", "bd-kb"]) {
      const run = ws2.readRun(bead)
      expect(run).toMatchObject({ status: "done", completion: { source: "exit" }, verification: { overall: "pass" } })
      // The restored actor may repeat the step it was in when the daemon died (it checks before it creates).
      const states = run.state_history.map((s: { state: string }) => s.state)
      expect(states[0]).toBe("queued")
      expect(states).toContain("running.working")
      expect(states[states.length - 1], JSON.stringify(states)).toBe("done")
      expect(states, JSON.stringify(states)).toContain("verifying")
      expect(run.supervisor.pid).toBe(d.child.pid)
    }
    // Finished sessions' snapshots are removed once their records are on disk.
    await eventually(() => fs.readdirSync(path.join(ws2.workspace, "state", "snapshots")).length === 0, 30_000, "snapshots removed")
    d.child.kill("SIGTERM")
    await exited(d.child)
  })

  it("SIGTERM leaves the agent working in tmux; the next start re-adopts it and records the finish", async () => {
    // A daemon an earlier failed test left behind would hold the workspace's lock.
    for (const child of daemons) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL")
        await exited(child)
      }
    }
    let d = start()
    await ready(d)
    const gate = path.join(ws2.dir, "gate-term")
    const repo = ws2.makeRepo("repo-term")
    await ws2.warden("dispatch", "bd-term", "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", `while [ ! -f ${gate} ]; do sleep 0.1; done; echo t > t.txt`)
    await eventually(() => ws2.readRun("bd-term")?.lifecycle_state === "running.working", 20_000, "running")
    d.child.kill("SIGTERM")
    // A clean stop (systemd's Restart=on-failure must not restart it).
    expect(await exited(d.child)).toBe(0)
    expect(fs.existsSync(path.join(ws2.workspace, "state", "daemon.json"))).toBe(false)
    // The agent is still there, still working.
    expect(ws2.tmux("has-session", "-t", "=agent-bd-term").status).toBe(0)
    expect(ws2.readRun("bd-term").status).toBe("running")
    fs.writeFileSync(gate, "")
    d = start()
    await ready(d)
    await eventually(() => ws2.readRun("bd-term")?.lifecycle_state === "done", 20_000, "done after the restart")
    expect(fs.readFileSync(path.join(repo, "t.txt"), "utf8")).toBe("t\n")
    d.child.kill("SIGTERM")
    await exited(d.child)
  })
})
