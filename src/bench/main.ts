/**
 * `npm run bench`: Warden's speed and memory, measured side by side in one
 * run on this machine, against the targets of the daemon issue. Everything
 * runs for real: the built daemon as a child process, tmux, git, shell agents.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import WebSocket from "ws"
import { wardenCliEntry } from "../workspace/paths.js"

const say = (text = "") => process.stdout.write(`${text}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const nowMs = () => performance.timeOrigin + performance.now()
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN
}
const ms = (value: number) => `${value.toFixed(1)} ms`

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "warden-bench-"))
const workspace = path.join(scratch, "workspace")
const socket = path.join(scratch, "tmux.sock")
const configFile = path.join(scratch, "warden.json")
const marks = path.join(scratch, "marks")
fs.mkdirSync(marks)
fs.writeFileSync(
  configFile,
  JSON.stringify({
    tmuxSocket: socket,
    allowedRoots: [scratch],
    allowRoot: true,
    minFreeDiskMb: 10,
    minFreeMemoryMb: 10,
    // Benchmarks measure the supervisor, not a test suite: only "the work changed something".
    verification: { repoTests: false },
    profiles: {
      sh: { command: "sh", args: ["-c", "{command}"], prompt: { mode: "file" }, completion: { sources: ["signal", "status-file", "exit"] }, retry: { maxAttempts: 1 } }
    }
  })
)

const git = (cwd: string, ...args: string[]) => spawnSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], { cwd })
let repoCount = 0
const makeRepo = () => {
  const repo = path.join(scratch, `repo-${++repoCount}`)
  fs.mkdirSync(repo)
  git(repo, "init", "-q")
  git(repo, "commit", "-q", "--allow-empty", "-m", "init")
  return repo
}

interface Daemon {
  readonly child: ChildProcess
  readonly port: number
  readonly token: string
}

const startDaemon = async (concurrency: number): Promise<{ daemon: Daemon; readyMs: number }> => {
  const infoFile = path.join(workspace, "state", "daemon.json")
  fs.rmSync(infoFile, { force: true })
  const started = nowMs()
  const child = spawn(process.execPath, [wardenCliEntry(), "--workspace", workspace, "--config", configFile, "daemon", "--port", "0", "--concurrency", String(concurrency)], {
    stdio: "ignore"
  })
  for (;;) {
    if (fs.existsSync(infoFile)) break
    if (child.exitCode !== null) throw new Error("the daemon did not start")
    await sleep(5)
  }
  const readyMs = nowMs() - started
  const info = JSON.parse(fs.readFileSync(infoFile, "utf8")) as { port: number }
  return { daemon: { child, port: info.port, token: fs.readFileSync(path.join(workspace, "state", "api-token"), "utf8").trim() }, readyMs }
}

const stopDaemon = async (daemon: Daemon, signal: NodeJS.Signals = "SIGTERM") => {
  daemon.child.kill(signal)
  await new Promise((resolve) => (daemon.child.exitCode !== null ? resolve(null) : daemon.child.once("exit", resolve)))
}

const api = async (daemon: Daemon, method: string, route: string, body?: unknown) => {
  const response = await fetch(`http://127.0.0.1:${daemon.port}${route}`, {
    method,
    headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const json = (await response.json()) as any
  if (response.status >= 400) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`)
  return json
}

const dispatch = (daemon: Daemon, bead: string, command: string, extra: Record<string, unknown> = {}, repo = makeRepo()) =>
  api(daemon, "POST", "/v1/dispatch", { bead, repo, agent: "sh", command, prompt: "bench", ...extra })

const readRun = (bead: string): any => {
  try {
    return JSON.parse(fs.readFileSync(path.join(workspace, "state", "runs", `${bead}.json`), "utf8"))
  } catch {
    // not written yet (or mid-rename): polled again
    return null
  }
}

const waitFor = async <T>(check: () => T | null | false | undefined, timeoutMs: number, what: string): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await sleep(20)
  }
}

const readMark = (file: string): number | null => {
  try {
    const text = fs.readFileSync(file, "utf8").trim()
    return text === "" ? null : Number(text) / 1e6
  } catch {
    // not written yet: polled again
    return null
  }
}

const procStats = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1])
  return { cpuSeconds: ticks / 100, rssMb: rssKb / 1024 }
}

const eventLoopP99 = async (daemon: Daemon): Promise<number> => {
  const response = await fetch(`http://127.0.0.1:${daemon.port}/metrics`, { headers: { authorization: `Bearer ${daemon.token}` } })
  const text = await response.text()
  const match = /^warden_nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)
  return match ? Number(match[1]) * 1000 : Number.NaN
}

const killAgents = () => spawnSync("tmux", ["-S", socket, "kill-server"])

interface Row {
  readonly name: string
  readonly value: string
  readonly target: string
  readonly ok: boolean | null
}
const rows: Row[] = []
const report = (name: string, value: string, target: string, ok: boolean | null) => {
  rows.push({ name, value, target, ok })
  say(`  ${name}: ${value}${target ? `   (target ${target}: ${ok === null ? "n/a" : ok ? "met" : "NOT met"})` : ""}`)
}

/** 1. API call to the agent's first output byte, against a bare `tmux new-session` running the same command. */
const dispatchOverhead = async (daemon: Daemon, samples: number) => {
  say(`dispatch overhead (${samples} samples each)`)
  const floor: number[] = []
  for (let i = 0; i < samples; i++) {
    const mark = path.join(marks, `floor-${i}`)
    const start = nowMs()
    spawnSync("tmux", ["-S", socket, "new-session", "-d", "-s", `floor-${i}`, "--", "sh", "-c", `date +%s%N > ${mark}; sleep 30`])
    const at = await waitFor(() => readMark(mark), 10_000, "floor mark")
    floor.push(at - start)
    spawnSync("tmux", ["-S", socket, "kill-session", "-t", `=floor-${i}`])
  }
  const warden: number[] = []
  const repos = Array.from({ length: samples }, () => makeRepo())
  for (let i = 0; i < samples; i++) {
    const mark = path.join(marks, `dispatch-${i}`)
    const start = nowMs()
    await dispatch(daemon, `bd-over-${i}`, `date +%s%N > ${mark}; echo started; sleep 30`, {}, repos[i])
    const at = await waitFor(() => readMark(mark), 20_000, "dispatch mark")
    warden.push(at - start)
    await api(daemon, "POST", `/v1/sessions/bd-over-${i}/cancel`, {})
  }
  const f50 = quantile(floor, 0.5)
  const w50 = quantile(warden, 0.5)
  report("bare tmux new-session to first byte, p50", ms(f50), "", null)
  report("warden API dispatch to first byte, p50", ms(w50), "", null)
  report("overhead above the floor, p50 (p90)", `${ms(w50 - f50)} (${ms(quantile(warden, 0.9) - quantile(floor, 0.9))})`, "< 50 ms", w50 - f50 < 50)
}

/** 2. Agent writes its status file, or exits, to the result record on disk. */
const detectionLatency = async (daemon: Daemon, samples: number) => {
  say(`completion detection latency (${samples} status-file and ${samples} exit completions, 100 ms apart among ${samples} running sessions)`)
  const results = path.join(workspace, "state", "results")
  const latencies: Record<string, number[]> = { "status-file": [], exit: [] }
  for (const kind of ["status-file", "exit"] as const) {
    const beads = Array.from({ length: samples }, (_, i) => `bd-detect-${kind}-${i}`)
    // Repos first: the measured part is the daemon's, not this process's git calls.
    const repos = beads.map(() => makeRepo())
    const seen = new Map<string, number>()
    const built = new Map<string, number>()
    const watcher = fs.watch(results, (_event, name) => {
      const bead = name?.toString().replace(/\.json$/, "")
      if (bead === undefined || seen.has(bead) || !beads.includes(bead)) return
      try {
        const file = path.join(results, `${bead}.json`)
        const mtime = fs.statSync(file).mtimeMs
        const record = JSON.parse(fs.readFileSync(file, "utf8"))
        // When the record reached the disk: its file's time (a later rewrite only makes this later, never earlier).
        if (record.completion !== null) {
          seen.set(bead, mtime)
          built.set(bead, Date.parse(record.updated_at))
        }
      } catch {
        // mid-rename
      }
    })
    const finish =
      kind === "status-file"
        ? `printf '{"status":"done","attempt_id":"%s"}' "$WARDEN_ATTEMPT" > "$WARDEN_STATUS_FILE.tmp"; date +%s%N > MARK; mv "$WARDEN_STATUS_FILE.tmp" "$WARDEN_STATUS_FILE"; sleep 30`
        : `date +%s%N > MARK; exit 0`
    // All sessions start and wait at a gate, then finish 100 ms apart: completions among running sessions,
    // not among the launches of the others.
    const gate = path.join(marks, `go-${kind}`)
    for (const [i, bead] of beads.entries()) {
      const mark = path.join(marks, bead)
      const wait = `while [ ! -f ${gate} ]; do sleep 0.05; done; sleep ${(i * 0.1).toFixed(1)}`
      await dispatch(daemon, bead, `echo work > w.txt; ${wait}; ${finish.replace("MARK", mark)}`, {}, repos[i])
    }
    await waitFor(() => beads.every((bead) => readRun(bead)?.lifecycle_state === "running.working"), 120_000, "every session running")
    fs.writeFileSync(gate, "")
    await waitFor(() => beads.every((bead) => seen.has(bead) && readMark(path.join(marks, bead)) !== null), 120_000, "every completion seen")
    watcher.close()
    for (const bead of beads) latencies[kind]!.push(seen.get(bead)! - readMark(path.join(marks, bead))!)
    if (process.env.BENCH_DEBUG) {
      const builtLatency = beads.map((bead) => built.get(bead)! - readMark(path.join(marks, bead))!)
      say(`  (${kind}: records built ${ms(quantile(builtLatency, 0.5))} p50 after the mark, on disk ${ms(quantile(latencies[kind]!, 0.5))})`)
    }
    await waitFor(() => beads.every((bead) => readRun(bead)?.status !== "running"), 120_000, "every session ended")
  }
  const all = [...latencies["status-file"]!, ...latencies.exit!]
  report("status file to result record, p50 / p99", `${ms(quantile(latencies["status-file"]!, 0.5))} / ${ms(quantile(latencies["status-file"]!, 0.99))}`, "", null)
  report("process exit to result record, p50 / p99", `${ms(quantile(latencies.exit!, 0.5))} / ${ms(quantile(latencies.exit!, 0.99))}`, "", null)
  report("detection p99, both", ms(quantile(all, 0.99)), "< 100 ms (the seed polls every 20 s)", quantile(all, 0.99) < 100)
}

/** 3. 100 chatty agents at once: the daemon's CPU, memory, event-loop delay, and feed latency to 20 clients. */
const chattyLoad = async (daemon: Daemon, sessions: number, clients: number) => {
  say(`${sessions} concurrent chatty sessions, ${clients} feed clients`)
  const latencies: number[] = []
  const sockets = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${daemon.port}/v1/feed`, { headers: { authorization: `Bearer ${daemon.token}` } })
          ws.on("message", (data) => {
            const event = JSON.parse(data.toString()) as { at?: string; seq?: number; topic?: string }
            if (event.topic !== undefined && event.at !== undefined) latencies.push(nowMs() - Date.parse(event.at))
          })
          ws.on("open", () => resolve(ws))
          ws.on("error", reject)
        })
    )
  )
  const beads = Array.from({ length: sessions }, (_, i) => `bd-chatty-${i}`)
  // 20 lines a second each, from one process (a shell loop would fork a `sleep` per line).
  const chatty = `perl -e '$|=1; for ($i = 0; ; $i++) { print "line $i of a chatty agent\\n"; select(undef, undef, undef, 0.05) }'`
  for (const bead of beads) await dispatch(daemon, bead, chatty)
  await waitFor(() => beads.every((bead) => readRun(bead)?.lifecycle_state?.startsWith("running")), 180_000, "every chatty session running")
  latencies.length = 0
  // A scrape resets prom-client's event-loop histogram: what the next one reports is this window alone.
  await eventLoopP99(daemon)
  const before = procStats(daemon.child.pid!)
  const window = 20_000
  let peakRss = before.rssMb
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, procStats(daemon.child.pid!).rssMb)), 500)
  // Events keep flowing to the feed while the agents chatter: a few sessions end and start each second.
  const churn = (async () => {
    for (let i = 0; i < 20; i++) {
      await sleep(window / 20)
      await api(daemon, "POST", `/v1/sessions/${beads[i]}/cancel`, {}).catch(() => undefined)
    }
  })()
  await sleep(window)
  await churn
  clearInterval(sampler)
  const after = procStats(daemon.child.pid!)
  const lag = await eventLoopP99(daemon)
  report("daemon CPU", `${(((after.cpuSeconds - before.cpuSeconds) / (window / 1000)) * 100).toFixed(1)} % of one core`, "", null)
  report("daemon RSS (peak)", `${peakRss.toFixed(0)} MB`, "< 250 MB", peakRss < 250)
  report("event-loop delay p99", ms(lag), "< 20 ms", lag < 20)
  report(`feed latency p99 to ${clients} clients`, `${ms(quantile(latencies, 0.99))} over ${latencies.length} deliveries`, "", null)
  for (const ws of sockets) ws.close()
  for (const bead of beads.slice(20)) await api(daemon, "POST", `/v1/sessions/${bead}/cancel`, {}).catch(() => undefined)
  await waitFor(() => beads.every((bead) => readRun(bead)?.status !== "running"), 180_000, "chatty sessions ended")
}

/** 4. 200 agents that wait without output: memory per session, and CPU while nothing happens. */
const idleSessions = async (daemon: Daemon, sessions: number) => {
  say(`${sessions} idle sessions`)
  const empty = procStats(daemon.child.pid!)
  const beads = Array.from({ length: sessions }, (_, i) => `bd-idle-${i}`)
  for (const bead of beads) await dispatch(daemon, bead, "sleep 3600", { stallSeconds: 3600 })
  await waitFor(() => beads.every((bead) => readRun(bead)?.lifecycle_state === "running.working"), 300_000, "every idle session running")
  await sleep(3_000)
  const before = procStats(daemon.child.pid!)
  const window = 30_000
  await sleep(window)
  const after = procStats(daemon.child.pid!)
  report("daemon RSS per idle session", `${((after.rssMb - empty.rssMb) / sessions).toFixed(2)} MB (${empty.rssMb.toFixed(0)} MB with none, ${after.rssMb.toFixed(0)} MB with ${sessions})`, "", null)
  const perMinute = ((after.cpuSeconds - before.cpuSeconds) / window) * 60_000
  report("daemon CPU while idle", `${perMinute.toFixed(2)} CPU seconds per minute`, "no CPU between events (< 1 s/min)", perMinute < 1)
  return beads
}

/** 5. kill -9 with 50 running sessions, then the time to a ready daemon with all of them restored. */
const recovery = async (daemon: Daemon, running: string[]) => {
  say(`recovery after kill -9 with ${running.length} running sessions`)
  await stopDaemon(daemon, "SIGKILL")
  const { daemon: next, readyMs } = await startDaemon(300)
  const restored = running.every((bead) => readRun(bead)?.supervisor.pid === next.child.pid || readRun(bead)?.status === "running")
  report("start to ready, every session restored", ms(readyMs), "< 2 s", readyMs < 2000 && restored)
  return next
}

/**
 * 6. The CLI's start-up, against `node -e 0` measured in the same run: agents call `warden signal`
 * on every hook and turn, operators and scripts call the rest. Runs alternate, medians of each.
 */
const cliStartup = async (daemon: Daemon, runs: number) => {
  say(`CLI start-up (median of ${runs} runs each, alternating with the floor)`)
  await dispatch(daemon, "bd-cli", "echo cli > cli.txt")
  await waitFor(() => ["done", "failed"].includes(readRun("bd-cli")?.lifecycle_state) && readRun("bd-cli"), 30_000, "bd-cli finished")
  const base = [wardenCliEntry(), "--workspace", workspace, "--config", configFile]
  const agentEnv = { ...process.env, WARDEN_BEAD: "bd-cli", WARDEN_ATTEMPT: "att-bench", WARDEN_WORKSPACE: workspace }
  const commands: ReadonlyArray<{ name: string; args: string[]; input?: string; limit: number }> = [
    { name: "warden signal --status done", args: [...base, "signal", "bd-cli", "--status", "done"], limit: 1.5 },
    {
      name: "warden signal --from claude-hook",
      args: [...base, "signal", "--from", "claude-hook"],
      input: JSON.stringify({ hook_event_name: "Stop", last_assistant_message: "Done." }),
      limit: 1.5
    },
    {
      name: "warden signal --from codex-notify",
      args: [...base, "signal", "--from", "codex-notify", JSON.stringify({ type: "agent-turn-complete", "input-messages": ["x"], "last-assistant-message": "ok" })],
      limit: 1.5
    },
    { name: "warden --version", args: [wardenCliEntry(), "--version"], limit: 4 },
    { name: "warden ps", args: [...base, "ps"], limit: 4 },
    { name: "warden show", args: [...base, "show", "bd-cli"], limit: 4 }
  ]
  const time = (args: string[], input?: string) => {
    const start = nowMs()
    const result = spawnSync(process.execPath, args, { env: agentEnv, input: input ?? "", stdio: ["pipe", "ignore", "ignore"] })
    if (result.status !== 0 && args[1] !== "-e") throw new Error(`warden ${args.slice(5).join(" ")} exited ${result.status}`)
    return nowMs() - start
  }
  for (const command of commands) {
    const floor: number[] = []
    const figures: number[] = []
    for (let i = 0; i < runs; i++) {
      floor.push(time(["-e", "0"]))
      figures.push(time(command.args, command.input))
    }
    const f = quantile(floor, 0.5)
    const w = quantile(figures, 0.5)
    report(`${command.name}, p50 (node -e 0: ${ms(f)})`, `${ms(w)} = ${(w / f).toFixed(2)}x`, `<= ${command.limit}x`, w / f <= command.limit)
  }
}

const main = async () => {
  say(`Warden benchmarks on ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version} (scratch: ${scratch})`)
  let { daemon } = await startDaemon(300)
  // BENCH_ONLY=overhead,detection runs only those parts (for working on one figure).
  const only = process.env.BENCH_ONLY?.split(",")
  const wanted = (part: string) => only === undefined || only.includes(part)
  try {
    if (wanted("overhead")) await dispatchOverhead(daemon, 20)
    if (wanted("detection")) await detectionLatency(daemon, 30)
    if (wanted("cli")) await cliStartup(daemon, 10)
    if (!wanted("load")) return
    await chattyLoad(daemon, 100, 20)
    // A fresh daemon for the idle figures: its memory then is what the idle sessions add, not the load test's heap.
    await stopDaemon(daemon)
    daemon = (await startDaemon(300)).daemon
    await sleep(2_000)
    const idle = await idleSessions(daemon, 200)
    // Keep 50 of them for the recovery; end the rest.
    for (const bead of idle.slice(50)) await api(daemon, "POST", `/v1/sessions/${bead}/cancel`, {})
    await waitFor(() => idle.slice(50).every((bead) => readRun(bead)?.status !== "running"), 120_000, "the other idle sessions ended")
    daemon = await recovery(daemon, idle.slice(0, 50))
  } finally {
    await stopDaemon(daemon)
    killAgents()
  }
  say()
  say("| measure | figure | target |")
  say("|---|---|---|")
  for (const row of rows) say(`| ${row.name} | ${row.value} | ${row.target ? `${row.target}: ${row.ok ? "met" : "**not met**"}` : ""} |`)
  fs.rmSync(scratch, { recursive: true, force: true })
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  killAgents()
  process.exitCode = 1
})
