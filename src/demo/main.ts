/**
 * `npm run demo`: a scratch workspace and git repos, four beads dispatched to
 * the scripted demo agent (a script, not an AI), each lifecycle shown as it
 * happens, then where the records are and how to read them with jq.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import { wardenCliEntry } from "../workspace/paths.js"

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "warden-demo-"))
const workspace = path.join(scratch, "workspace")
const configFile = path.join(scratch, "warden.json")
const socket = path.join(scratch, "tmux.sock")
const isRoot = process.getuid?.() === 0
/** `npm run demo -- --keep` keeps the scratch directory, to read the records with jq afterwards. */
const keep = process.argv.includes("--keep")

const say = (text = "") => process.stdout.write(`${text}\n`)

/** A free port on 127.0.0.1, for the demo's service. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no free port"))))
    })
  })
const servicePort = await freePort()
const serviceScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "demoService.js")

const makeRepo = (name: string): string => {
  const repo = path.join(scratch, name)
  fs.mkdirSync(repo, { recursive: true })
  const git = (...args: string[]) => spawnSync("git", ["-c", "user.name=warden-demo", "-c", "user.email=demo@localhost", ...args], { cwd: repo })
  git("init", "-q", "-b", "main")
  fs.writeFileSync(path.join(repo, "README.md"), `# ${name}\n\nA scratch repo for the warden demo.\n`)
  git("add", "README.md")
  git("commit", "-q", "-m", "initial commit")
  return repo
}

fs.writeFileSync(
  configFile,
  JSON.stringify(
    {
      tmuxSocket: socket,
      allowedRoots: [scratch],
      // The demo's machine may well be a root-only container; a real server should not run agents as root.
      allowRoot: isRoot,
      minFreeDiskMb: 100,
      minFreeMemoryMb: 100,
      // One small service the daemon supervises in process mode; the demo makes it crash once.
      services: {
        "demo-web": {
          command: process.execPath,
          args: [serviceScript, String(servicePort)],
          health: { http: `http://127.0.0.1:${servicePort}/health`, bodyPattern: "^ok", intervalSeconds: 0.5 },
          restart: { backoffInitialMs: 1_000, backoffFactor: 2, backoffMaxMs: 10_000, maxRestarts: 3, withinSeconds: 60 },
          stopGraceMs: 2_000
        }
      }
    },
    null,
    2
  )
)

const cli = (args: string[]) => [wardenCliEntry(), "--workspace", workspace, "--config", configFile, ...args]

interface DemoBead {
  readonly bead: string
  readonly agent: string
  readonly scenario: string
  readonly extra: string[]
  readonly expect: string
  readonly story: string
}

const beads: DemoBead[] = [
  { bead: "bd-demo-ok", agent: "demo", scenario: "succeed", extra: [], expect: "done", story: "commits its change and runs `warden signal --status done`" },
  {
    bead: "bd-demo-retry",
    agent: "demo",
    scenario: "fail-once",
    extra: ["--max-retries", "2"],
    expect: "done",
    story: "exits 1 on its first attempt, is retried after a backoff, and succeeds"
  },
  {
    bead: "bd-demo-timeout",
    agent: "demo",
    scenario: "hang",
    extra: ["--timeout", "6", "--stall", "3", "--max-retries", "1"],
    expect: "timeout",
    story: "goes quiet (stalled after 3 s) and hits its 6 s deadline"
  },
  {
    bead: "bd-demo-ask",
    agent: "demo-tui",
    scenario: "ask",
    extra: [],
    expect: "done",
    story: "an interactive agent that asks a [y/n] question: waiting-input, answered with `warden send`"
  }
]

const runBead = (demo: DemoBead): Promise<string> =>
  new Promise((resolve) => {
    const repo = makeRepo(`repo-${demo.bead}`)
    const child = spawn(
      process.execPath,
      cli(["dispatch", demo.bead, "--repo", repo, "--agent", demo.agent, "--template", "custom", "--prompt", `SCENARIO: ${demo.scenario}`, "--wait", ...demo.extra]),
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let answered = false
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      say(`  ${line}`)
      if (!answered && line.includes("running.waitingInput")) {
        answered = true
        setTimeout(() => {
          say(`  >>> the operator answers: warden send ${demo.bead} y`)
          const sent = spawnSync(process.execPath, cli(["send", demo.bead, "y"]), { encoding: "utf8" })
          if (sent.status !== 0) say(`  >>> warden send failed: ${sent.stderr}`)
        }, 1_500)
      }
    })
    readline.createInterface({ input: child.stderr! }).on("line", (line) =>
      // dispatch --wait exits 1 for any end but done: for a bead meant to end otherwise, that is the story, not an error.
      say(line === `warden: ${demo.bead} ended ${demo.expect}` ? `  (dispatch --wait exits 1 when a bead does not end done: ${demo.expect} is what this bead shows)` : `  ${line}`)
    )
    child.on("close", () => {
      const result = JSON.parse(fs.readFileSync(path.join(workspace, "state", "results", `${demo.bead}.json`), "utf8")) as {
        outcome: string | null
      }
      resolve(result.outcome ?? "unknown")
    })
  })

const main = async () => {
  say("Warden demo: four beads, one scripted demo agent (a script, not an AI: src/demo/scriptedAgent.ts).")
  say(`scratch directory: ${scratch}`)
  say(`agents' tmux socket: ${socket}  (watch one live: tmux -S ${socket} attach -t agent-bd-demo-ask)`)
  if (isRoot) say("running as root: the demo's config allows it (allowRoot); a server's config should not.")
  say()
  for (const demo of beads) say(`  ${demo.bead.padEnd(16)} ${demo.agent.padEnd(9)} ${demo.story}`)
  say()
  const outcomes = await Promise.all(beads.map(runBead))
  say()
  say("$ warden ps")
  say(spawnSync(process.execPath, cli(["ps"]), { encoding: "utf8" }).stdout.trimEnd())
  say()
  say("$ warden show bd-demo-retry")
  say(spawnSync(process.execPath, cli(["show", "bd-demo-retry"]), { encoding: "utf8" }).stdout.trimEnd())
  say()
  const serviceOk = await serviceDemo()
  say()
  const root = keep ? workspace : "<workspace>"
  say("The records (the seed's schema version 1, plus Warden's fields):")
  say(`  ${root}/state/runs/<bead>.json`)
  say(`  ${root}/state/results/<bead>.json`)
  say(`  ${root}/memory/YYYY-MM-DD.md`)
  say("Read them with jq, for example:")
  say(`  jq -r '[.bead, .status, .outcome, .attempt, .completion.source] | @tsv' ${root}/state/runs/*.json`)
  say(`  jq '{bead, status, reason, will_retry, verification: .verification.overall}' ${root}/state/results/bd-demo-retry.json`)
  say(`  jq '.state_history' ${root}/state/runs/bd-demo-ask.json`)
  say(`  cat ${root}/memory/*.md`)
  say()
  let ok = true
  beads.forEach((demo, i) => {
    const outcome = outcomes[i]
    const match = outcome === demo.expect
    ok &&= match
    say(`${match ? "ok  " : "FAIL"} ${demo.bead}: ${outcome} (expected ${demo.expect})`)
  })
  say(`${serviceOk ? "ok  " : "FAIL"} demo-web: crashed once, restarted after its backoff (expected)`)
  process.exitCode = ok && serviceOk ? 0 : 1
}

interface ServiceRow {
  readonly name: string
  readonly state: string
  readonly pid: number | null
  readonly restarts: number
}

/**
 * The services part: a daemon supervises `demo-web` (a small HTTP server with a
 * /health probe); the demo makes it crash once and shows it restarted after its
 * backoff, then stops the daemon, which stops the service with it.
 */
const serviceDemo = async (): Promise<boolean> => {
  say("Services: the daemon supervises demo-web, a small HTTP server (src/demo/demoService.ts) with a /health probe.")
  const daemon = spawn(process.execPath, cli(["daemon", "--port", "0"]), { stdio: "ignore" })
  const gone = new Promise<void>((resolve) => daemon.once("exit", () => resolve()))
  const listServices = (): ReadonlyArray<ServiceRow> => {
    const listed = spawnSync(process.execPath, cli(["services", "--json"]), { encoding: "utf8" })
    if (listed.status !== 0) return []
    return (JSON.parse(listed.stdout) as { services: ReadonlyArray<ServiceRow> }).services
  }
  const until = async (what: string, condition: (row: ServiceRow) => boolean): Promise<ServiceRow | null> => {
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      const row = listServices().find((s) => s.name === "demo-web")
      if (row !== undefined && condition(row)) return row
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    say(`  demo-web did not get ${what} within 20 s`)
    return null
  }
  try {
    const first = await until("running", (s) => s.state === "running.healthy")
    if (first === null) return false
    say(`  demo-web is running.healthy (pid ${first.pid}); now it crashes: POST /crash makes it exit 1`)
    await fetch(`http://127.0.0.1:${servicePort}/crash`, { method: "POST" }).catch(() => undefined)
    const backingOff = await until("backing off", (s) => s.state === "backingOff" || s.restarts > 0)
    if (backingOff !== null) say(`  demo-web: ${backingOff.state} (restarted after a 1 s backoff, doubling up to 10 s; failed after 3 restarts within 60 s)`)
    const again = await until("restarted", (s) => s.state === "running.healthy" && s.restarts === 1 && s.pid !== first.pid)
    if (again === null) return false
    say("$ warden services")
    say(spawnSync(process.execPath, cli(["services"]), { encoding: "utf8" }).stdout.trimEnd())
    return true
  } finally {
    daemon.kill("SIGTERM")
    await gone
    say("  the daemon stopped (SIGTERM), and demo-web's process group with it")
  }
}

/** Nothing outlives the demo: its tmux server and agents end; its scratch directory goes unless --keep. */
const cleanUp = () => {
  spawnSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" })
  if (keep) say(`kept ${scratch} (rm -rf it when done)`)
  else {
    fs.rmSync(scratch, { recursive: true, force: true })
    say(`removed the scratch directory ${scratch} (npm run demo -- --keep keeps it, to try the jq lines above)`)
  }
}

main()
  .catch((error) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exitCode = 1
  })
  .finally(cleanUp)
