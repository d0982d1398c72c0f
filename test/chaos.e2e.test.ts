import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cliEntry, eventually, makeWorkspace } from "./support/workspace.js"
import { processesWithEnv } from "./support/processes.js"

/**
 * The durability the README promises, tested the way Temporal tests its own:
 * 20 beads whose agents sleep 1-6 s and commit one file each, while the built
 * daemon is killed with -9 at random moments (a seeded PRNG; the seed is in
 * every failure message) at least 20 times and restarted at once. Every bead
 * must end `done` exactly once, each agent must have run once and committed
 * once, and no agent process may be left.
 */
const BEADS = 20
const KILLS = 20
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))

/** mulberry32: a small, well-known seeded PRNG. */
const prng = (state: number) => () => {
  state = (state + 0x6d2b79f5) | 0
  let t = Math.imul(state ^ (state >>> 15), 1 | state)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const random = prng(seed)
const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1))

const ws = makeWorkspace()
const runsDir = path.join(ws.dir, "agent-runs")
const infoFile = path.join(ws.workspace, "state", "daemon.json")
const daemons: ChildProcess[] = []

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

afterAll(async () => {
  for (const child of daemons.filter(alive)) {
    child.kill("SIGKILL")
    await new Promise((resolve) => child.once("exit", resolve))
  }
  ws.cleanup()
})

const startDaemon = (): ChildProcess => {
  fs.rmSync(infoFile, { force: true })
  const child = spawn(process.execPath, [cliEntry, "--workspace", ws.workspace, "--config", ws.configFile, "daemon", "--port", "0", "--concurrency", "10"], {
    stdio: "ignore"
  })
  daemons.push(child)
  return child
}

/** The API of the daemon `child` once it is ready, or null when it is not (yet). */
const apiOf = (child: ChildProcess): { base: string; token: string } | null => {
  try {
    const info = JSON.parse(fs.readFileSync(infoFile, "utf8")) as { pid: number; port: number }
    if (info.pid !== child.pid) return null
    return { base: `http://127.0.0.1:${info.port}`, token: fs.readFileSync(path.join(ws.workspace, "state", "api-token"), "utf8").trim() }
  } catch {
    return null
  }
}

const beads = Array.from({ length: BEADS }, (_, i) => `bd-chaos-${i + 1}`)
const repos = new Map<string, string>()
const accepted = new Set<string>()

/** Dispatches a bead; a dispatch cut off by a kill is sent again later (a 409 says the first one was taken). */
const dispatch = async (api: { base: string; token: string }, bead: string, sleep: number): Promise<void> => {
  const repo = repos.get(bead)!
  const command = [
    `echo "$WARDEN_ATTEMPT" >> ${path.join(runsDir, bead)}`,
    `sleep ${sleep}`,
    `echo ${bead} > work.txt`,
    "git add work.txt",
    "git -c user.name=agent -c user.email=agent@localhost commit -qm work"
  ].join(" && ")
  try {
    const response = await fetch(`${api.base}/v1/dispatch`, {
      method: "POST",
      headers: { authorization: `Bearer ${api.token}`, "content-type": "application/json" },
      body: JSON.stringify({ bead, repo, agent: "shell", prompt: "chaos", command })
    })
    const body = (await response.json().catch(() => null)) as { error?: string } | null
    if (response.status === 202 || (response.status === 409 && /already dispatched|being supervised/.test(body?.error ?? ""))) accepted.add(bead)
    // Any other answer is a finding, never something to send again until it works.
    else throw new Error(`seed ${seed}: dispatch of ${bead} answered ${response.status}: ${JSON.stringify(body)}`)
  } catch (error) {
    if ((error as Error).message.startsWith(`seed ${seed}`)) throw error
    // The daemon died under the request: sent again to the next one.
  }
}

const agentProcesses = (): string[] => processesWithEnv("WARDEN_WORKSPACE", ws.workspace).map((p) => String(p.pid))

describe("chaos: kill -9 at random moments", () => {
  it(`${BEADS} beads, ${KILLS} kills: every bead done exactly once, one agent run and one commit each, no agent left`, async () => {
    fs.mkdirSync(runsDir, { recursive: true })
    const sleeps = new Map(beads.map((bead) => [bead, between(1, 6)]))
    for (const bead of beads) repos.set(bead, ws.makeRepo(`repo-${bead}`))
    const started = Date.now()

    let kills = 0
    while (kills < KILLS || accepted.size < BEADS) {
      const child = startDaemon()
      // Killed at a random moment: during start-up and restore, or while it supervises.
      const killAt = Date.now() + between(300, 3_000)
      while (Date.now() < killAt) {
        const api = apiOf(child)
        if (api !== null) {
          const next = beads.filter((bead) => !accepted.has(bead)).slice(0, between(1, 4))
          await Promise.all(next.map((bead) => dispatch(api, bead, sleeps.get(bead)!)))
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(100, killAt - Date.now()))))
      }
      child.kill("SIGKILL")
      await new Promise((resolve) => (alive(child) ? child.once("exit", resolve) : resolve(null)))
      kills++
      expect(kills, `seed ${seed}: the dispatches did not get through`).toBeLessThan(KILLS * 3)
    }

    const last = startDaemon()
    await eventually(() => apiOf(last), 20_000, `seed ${seed}: the last daemon ready`)
    const states = () => beads.map((bead) => `${bead}=${ws.readRun(bead)?.lifecycle_state}`).join(", ")
    const finished = await eventually(
      () => {
        const runs = beads.map((bead) => ws.readRun(bead))
        const bad = runs.find((run) => run !== null && run.status !== "running" && run.status !== "done")
        if (bad !== undefined) return { bad }
        // `done` in status comes with the verification; the lifecycle ends after cleaning, notifying and remembering.
        return runs.every((run) => run?.lifecycle_state === "done") ? { bad: null } : null
      },
      75_000,
      `seed ${seed}: every bead finished`
    ).catch((error: Error) => {
      throw new Error(`${error.message}; now: ${states()}`)
    })
    expect(finished.bad, `seed ${seed}`).toBeNull()

    const memory = ws.memory()
    for (const bead of beads) {
      const run = ws.readRun(bead)
      const result = ws.readResult(bead)
      expect(result?.status, `seed ${seed}: ${bead} result`).toBe("done")
      expect(result?.attempt_id, `seed ${seed}: ${bead}`).toBe(run.attempt_id)
      // Done once: one attempt, one `done` in its history, one memory line.
      expect(run.attempt, `seed ${seed}: ${bead} attempts`).toBe(1)
      expect(run.state_history.filter((entry: { state: string }) => entry.state === "done"), `seed ${seed}: ${bead}`).toHaveLength(1)
      expect(memory.split("\n").filter((line) => line.includes(`Bead \`${bead}\``)), `seed ${seed}: ${bead} memory lines`).toHaveLength(1)
      // The agent ran once, as the attempt that finished, and committed once.
      const runs = fs.readFileSync(path.join(runsDir, bead), "utf8").trim().split("\n")
      expect(runs, `seed ${seed}: ${bead} agent runs`).toEqual([run.attempt_id])
      const commits = spawnSync("git", ["rev-list", "--count", "HEAD"], { cwd: repos.get(bead)!, encoding: "utf8" }).stdout.trim()
      expect(commits, `seed ${seed}: ${bead} commits (the initial one and the agent's)`).toBe("2")
      const transcripts = fs.readdirSync(path.join(ws.workspace, "state", "transcripts")).filter((name) => name.startsWith(`${bead}.`))
      expect(transcripts, `seed ${seed}: ${bead} launches`).toHaveLength(1)
    }
    expect(agentProcesses(), `seed ${seed}: agent processes left`).toEqual([])
    // For the closing note: the wall time of one run.
    process.stdout.write(`chaos: seed ${seed}, ${kills} kills, ${Math.round((Date.now() - started) / 1000)} s\n`)
  }, 180_000)

  it("killed the moment an attempt's first file appears, the restart resumes that attempt: no second preflight, no second launch", async () => {
    const other = makeWorkspace()
    try {
      for (let i = 0; i < 3; i++) {
        const bead = `bd-first-file-${i}`
        const repo = other.makeRepo(`repo-${i}`)
        const daemon = await other.startDaemon()
        const transcripts = path.join(other.workspace, "state", "transcripts")
        fs.mkdirSync(transcripts, { recursive: true })
        let attempt = ""
        // The launch's first write, caught by inotify: the daemon dies as close to its state change as it can.
        const watcher = fs.watch(transcripts, (_event, name) => {
          if (attempt === "" && String(name).startsWith(`${bead}.`)) {
            attempt = String(name).slice(bead.length + 1, -".log".length)
            daemon.child.kill("SIGKILL")
          }
        })
        const ran = path.join(other.dir, `${bead}.runs`)
        const command = `echo "$WARDEN_ATTEMPT" >> ${ran} && sleep 1 && echo x > x.txt && git add x.txt && git -c user.name=a -c user.email=a@localhost commit -qm x`
        await fetch(`${daemon.base}/v1/dispatch`, {
          method: "POST",
          headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
          body: JSON.stringify({ bead, repo, agent: "shell", prompt: "x", command })
        }).catch(() => null)
        if (alive(daemon.child)) await new Promise((resolve) => daemon.child.once("exit", resolve))
        watcher.close()
        const next = await other.startDaemon()
        await eventually(() => ["done", "failed"].includes(other.readRun(bead)?.lifecycle_state), 30_000, `${bead} finished`)
        next.child.kill("SIGTERM")
        await new Promise((resolve) => next.child.once("exit", resolve))
        expect(other.readRun(bead), `${bead}`).toMatchObject({ lifecycle_state: "done", attempt: 1, attempt_id: attempt })
        expect(fs.readFileSync(ran, "utf8").trim().split("\n"), `${bead}: agent runs`).toEqual([attempt])
      }
    } finally {
      other.cleanup()
    }
  }, 120_000)
})

