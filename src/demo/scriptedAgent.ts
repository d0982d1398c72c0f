/**
 * The demo's scripted "agent": a plain script that behaves like a coding agent so the supervisor can be
 * shown end to end without an AI. It is not an AI; it picks a canned behaviour from a `SCENARIO: <name>`
 * line in its prompt (default `succeed`).
 *
 *   node dist/src/demo/scriptedAgent.js --prompt-file FILE   headless: run the prompt's scenario, then exit
 *   node dist/src/demo/scriptedAgent.js --interactive        read prompts typed on the terminal, one per line
 *
 * It runs with cwd = the bead's git repo and reads WARDEN_BEAD, WARDEN_ATTEMPT, WARDEN_ATTEMPT_NUMBER and
 * WARDEN_STATUS_FILE from the environment; `warden signal` (on PATH) reads the same variables.
 *
 * Scenarios: succeed, fail-once, hang, ask, marker, noop (see `runScenario`).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"

const IDLE_PROMPT = "demo> "
const QUESTION = "Overwrite the existing notes? [y/n]"
const STEP_MS = 300
const STARTUP_MS = 800
/** Lines arriving this close together are one pasted prompt, not several typed ones. */
const PASTE_GAP_MS = 150

type Mode = "headless" | "interactive"

const scenarios = ["succeed", "fail-once", "hang", "ask", "marker", "noop"] as const
type Scenario = (typeof scenarios)[number]

const bead = process.env["WARDEN_BEAD"] || "demo"
const attemptId = process.env["WARDEN_ATTEMPT"] || "unknown-attempt"
const attemptNumber = Number.parseInt(process.env["WARDEN_ATTEMPT_NUMBER"] ?? "1", 10) || 1
const statusFile = process.env["WARDEN_STATUS_FILE"] || ""
const demoFile = `demo-${bead}.txt`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const say = (line: string) => {
  process.stdout.write(`${line}\n`)
}
const sleepForever = (): Promise<never> =>
  new Promise<never>(() => {
    setInterval(() => {}, 1 << 30)
  })

/** Reads stdin line by line; lines are queued until someone asks for them. */
class LineReader {
  private readonly lines: string[] = []
  private waiting: ((line: string | null) => void) | null = null
  private ended = false

  constructor() {
    const rl = readline.createInterface({ input: process.stdin, terminal: false })
    rl.on("line", (raw) => {
      // Drop bracketed-paste markers and other stray escape sequences a terminal may send.
      const line = raw.replace(/\x1b\[[0-9;]*[~A-Za-z]/g, "").replace(/\r$/, "")
      if (this.waiting) {
        const resolve = this.waiting
        this.waiting = null
        resolve(line)
      } else this.lines.push(line)
    })
    rl.on("close", () => {
      this.ended = true
      if (this.waiting) {
        const resolve = this.waiting
        this.waiting = null
        resolve(null)
      }
    })
  }

  /** The next line, or null at end of input. */
  next(): Promise<string | null> {
    const queued = this.lines.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    if (this.ended) return Promise.resolve(null)
    return new Promise((resolve) => {
      this.waiting = resolve
    })
  }

  /** The next line, or null if none arrives within `ms` (or input ended). */
  nextWithin(ms: number): Promise<string | null> {
    const queued = this.lines.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    if (this.ended) return Promise.resolve(null)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null
        resolve(null)
      }, ms)
      this.waiting = (line) => {
        clearTimeout(timer)
        resolve(line)
      }
    })
  }
}

let reader: LineReader | null = null
const lineReader = (): LineReader => (reader ??= new LineReader())

const parseScenario = (prompt: string): string => {
  const match = /SCENARIO:\s*([A-Za-z0-9_-]+)/.exec(prompt)
  return match?.[1] ?? "succeed"
}

const isScenario = (name: string): name is Scenario => (scenarios as readonly string[]).includes(name)

const git = (args: ReadonlyArray<string>): { ok: boolean; output: string } => {
  const result = spawnSync(
    "git",
    ["-c", "user.name=warden-demo", "-c", "user.email=demo@localhost", ...args],
    { encoding: "utf8" }
  )
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim()
  return { ok: result.status === 0, output: result.error ? String(result.error) : output }
}

let tasksDone = 0

/** The actual "work": write demo-<bead>.txt and commit it. Returns false (after saying why) on failure. */
const doTheWork = async (): Promise<boolean> => {
  say("reading the repo")
  await sleep(STEP_MS)
  say("planning the change")
  await sleep(STEP_MS)
  say(`writing ${demoFile}`)
  tasksDone++
  const content = [
    `Demo change for bead ${bead}.`,
    `Written by the warden demo agent (a script, not an AI).`,
    `attempt: ${attemptId} (number ${attemptNumber}), task ${tasksDone}`,
    `at: ${new Date().toISOString()}`,
    ""
  ].join("\n")
  try {
    fs.writeFileSync(path.join(process.cwd(), demoFile), content)
  } catch (error) {
    say(`could not write ${demoFile}: ${error instanceof Error ? error.message : String(error)}`)
    return false
  }
  await sleep(STEP_MS)
  say("committing")
  const add = git(["add", "--", demoFile])
  if (!add.ok) {
    say(`git add failed: ${add.output}`)
    return false
  }
  const commit = git(["commit", "-q", "-m", `${bead}: demo change`])
  if (!commit.ok) {
    say(`git commit failed: ${commit.output}`)
    return false
  }
  await sleep(STEP_MS)
  return true
}

/** Reports completion the way a real agent is told to: `warden signal`, else the status file. */
const signalDone = (summary: string): void => {
  const result = spawnSync("warden", ["signal", "--status", "done", "--summary", summary], { stdio: "inherit" })
  if (!result.error && result.status === 0) return
  say(result.error ? "warden command unavailable; writing the status file" : "warden signal failed; writing the status file")
  if (!statusFile) {
    say("no WARDEN_STATUS_FILE set either")
    return
  }
  try {
    fs.mkdirSync(path.dirname(statusFile), { recursive: true })
    fs.writeFileSync(statusFile, `${JSON.stringify({ status: "done", summary, attempt_id: attemptId })}\n`)
  } catch (error) {
    say(`could not write ${statusFile}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

let failOnceSeen = false

/**
 * Runs one prompt. Headless: resolves with the exit code (or never resolves, for hang and marker).
 * Interactive: resolves when the turn is over (never, for hang); the caller shows the idle prompt again.
 */
const runScenario = async (prompt: string, mode: Mode): Promise<number> => {
  const scenario = parseScenario(prompt)
  if (!isScenario(scenario)) {
    say(`unknown scenario "${scenario}" (known: ${scenarios.join(", ")})`)
    return 2
  }
  switch (scenario) {
    case "succeed": {
      if (!(await doTheWork())) return 1
      if (mode === "interactive") {
        say("done.")
        return 0
      }
      signalDone(`wrote ${demoFile}`)
      return 0
    }
    case "fail-once": {
      // Interactive sessions may be re-prompted in the same process, so count failures here as well.
      const fail = attemptNumber <= 1 && !failOnceSeen
      failOnceSeen = true
      if (fail) {
        say("reading the repo")
        await sleep(STEP_MS)
        say("something went wrong")
        return 1
      }
      if (!(await doTheWork())) return 1
      say("done.")
      return 0
    }
    case "hang": {
      say("thinking...")
      return sleepForever()
    }
    case "ask": {
      say("reading the repo")
      await sleep(STEP_MS)
      say(`found existing notes for ${bead}`)
      await sleep(STEP_MS)
      process.stdout.write(QUESTION)
      const answer = await lineReader().next()
      process.stdout.write("\n")
      const yes = answer !== null && /^\s*(y|yes)\s*$/i.test(answer)
      if (!yes) {
        say("not overwriting")
        return 1
      }
      if (!(await doTheWork())) return 1
      say("done.")
      return 0
    }
    case "marker": {
      if (!(await doTheWork())) return 1
      say("WARDEN_DONE")
      if (mode === "interactive") return 0
      return sleepForever()
    }
    case "noop": {
      say("nothing to do")
      return 0
    }
  }
}

const headless = async (promptFile: string): Promise<never> => {
  let prompt: string
  try {
    prompt = fs.readFileSync(promptFile, "utf8")
  } catch (error) {
    say(`cannot read prompt file ${promptFile}: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(2)
  }
  say(`demo agent: bead ${bead}, attempt ${attemptNumber} (${attemptId})`)
  say(`prompt: ${prompt.split("\n").length} lines, scenario: ${parseScenario(prompt)}`)
  const code = await runScenario(prompt, "headless")
  process.exit(code)
}

const interactive = async (): Promise<never> => {
  say("demo agent starting...")
  const lines = lineReader()
  await sleep(STARTUP_MS)
  for (;;) {
    process.stdout.write(IDLE_PROMPT)
    const first = await lines.next()
    if (first === null) {
      process.stdout.write("\n")
      process.exit(0)
    }
    // A pasted multi-line prompt arrives as a burst of lines: treat the burst as one prompt.
    const burst = [first]
    for (;;) {
      const more = await lines.nextWithin(PASTE_GAP_MS)
      if (more === null) break
      burst.push(more)
    }
    const prompt = burst.join("\n")
    const trimmed = prompt.trim()
    if (trimmed === "") continue
    if (trimmed === "exit" || trimmed === "quit" || trimmed === "/exit") {
      say("bye.")
      process.exit(0)
    }
    await runScenario(prompt, "interactive")
  }
}

const main = (argv: ReadonlyArray<string>): Promise<never> => {
  const fileIndex = argv.indexOf("--prompt-file")
  if (argv.includes("--interactive")) return interactive()
  const promptFile = fileIndex >= 0 ? argv[fileIndex + 1] : undefined
  if (promptFile !== undefined) return headless(promptFile)
  process.stderr.write("usage: scriptedAgent.js --prompt-file FILE | --interactive\n")
  process.exit(2)
}

void main(process.argv.slice(2))
