import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { AgentReport, AgentSignal, SessionEvent, WatchInput } from "../../machines/agentSession.types.js"
import { mergeReports, reportFromLine } from "../agents/agentOutput.js"
import { compileRules, readScreen, screenShows } from "./screenRules.js"
import { readFrom } from "../workspace/readRange.js"
import { Terminals } from "../terminals/Terminals.js"
import { deliverByKeys, markDelivered } from "./launch.js"
import type { DispatchSpec } from "./dispatchSpec.js"

const MAX_PARTIAL_LINE = 64 * 1024

/** Strips terminal escape sequences so output lines can be matched as text. */
export const stripAnsi = (text: string): string =>
  // CSI, OSC (ended by BEL or ST), and single-character escapes.
  text.replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g, "")

/** Reads a status file's or signal's status word in the seed's vocabulary and Warden's. */
export const statusWord = (value: unknown): AgentSignal["status"] | null => {
  if (typeof value !== "string") return null
  const word = value.toLowerCase()
  if (["done", "completed", "complete", "success", "succeeded"].includes(word)) return "done"
  if (["failed", "failure", "error"].includes(word)) return "failed"
  if (["waiting", "waiting-input", "needs-input", "question"].includes(word)) return "waiting"
  return null
}

type Pane = { readonly dead: boolean; readonly deadStatus: number | null }

/** Sessions watched for their liveness, per Terminals service: one `list-panes -a` serves them all. */
const livenessMonitors = new WeakMap<Terminals["Type"], { timer: NodeJS.Timeout; sessions: Map<string, (pane: Pane | null) => void> }>()

/**
 * Calls `gone` once the session has vanished (null) or its pane is dead,
 * checking every session on the socket with one tmux call every `intervalMs`
 * (the config's `livenessIntervalMs`; the first watch on a socket sets it).
 */
const watchLiveness = (
  terminals: Terminals["Type"],
  intervalMs: number,
  session: string,
  gone: (pane: Pane | null) => void
): (() => void) => {
  let monitor = livenessMonitors.get(terminals)
  if (monitor === undefined) {
    const sessions = new Map<string, (pane: Pane | null) => void>()
    const timer = setInterval(() => {
      Effect.runPromise(Effect.either(terminals.panes)).then((result) => {
        if (result._tag === "Left") return
        const bySession = new Map(result.right.map((pane) => [pane.session, pane]))
        for (const [name, callback] of [...sessions]) {
          const pane = bySession.get(name)
          if (pane === undefined) callback(null)
          else if (pane.dead) callback(pane)
        }
      })
    }, intervalMs)
    timer.unref()
    monitor = { timer, sessions }
    livenessMonitors.set(terminals, monitor)
  }
  const current = monitor
  current.sessions.set(session, gone)
  return () => {
    if (current.sessions.get(session) === gone) current.sessions.delete(session)
    if (current.sessions.size === 0) {
      clearInterval(current.timer)
      livenessMonitors.delete(terminals)
    }
  }
}

export interface WatchDeps {
  readonly spec: DispatchSpec
  readonly terminals: Terminals["Type"]
  readonly now: () => number
  readonly log: (message: string, detail?: Record<string, unknown>) => void
}

/**
 * Watches one attempt and reports what it sees as machine events. Everything
 * is driven by file-system events: the transcript growing (pipe-pane), the
 * signal log, the status file and the exit file the launcher writes. Screen
 * checks (dialogs, idle prompt) run once the output has settled. The machine,
 * not this watcher, decides whether a signal belongs to the attempt.
 */
export const startWatch = (deps: WatchDeps, input: WatchInput, sendBack: (event: SessionEvent) => void): (() => void) => {
  const { spec, terminals } = deps
  const paths = spec.paths
  const completion = spec.profile.config.completion
  const doneMarker = completion.doneMarker === undefined ? null : new RegExp(completion.doneMarker)
  const failedMarker = completion.failedMarker === undefined ? null : new RegExp(completion.failedMarker)
  const rules = compileRules(completion.waitingPatterns, input.sources.includes("idle-prompt") ? completion.idlePrompt : null)
  const idlePrompt = rules.idlePrompt
  const waiting = rules.waiting
  const outputFormat = spec.profile.config.output
  let report: AgentReport | null = null
  const statusName = path.basename(paths.statusFile(input.bead))
  const signalsName = path.basename(paths.signalsFile(input.bead))
  const exitName = path.basename(paths.exitFile(input.bead, input.attemptId))

  let stopped = false
  // The transcript is this attempt's alone: read it from the start, so output printed
  // while the attempt was launching (before this watch began) is seen too.
  let transcriptOffset = 0
  let partialLine = ""
  let signalsOffset = input.signalsOffset
  let lastStatusMtime = 0
  let lastOutputSent = 0
  let outputSinceLaunch = false
  let inDialog = false
  let exited = false
  let screenTimer: NodeJS.Timeout | null = null
  let outputTimer: NodeJS.Timeout | null = null
  const send = (event: SessionEvent) => {
    if (!stopped) sendBack(event)
  }

  const readJson = (file: string): unknown => {
    try {
      return JSON.parse(fs.readFileSync(file, "utf8"))
    } catch {
      // missing or torn (mid-write): read again on the next change
      return null
    }
  }

  const readStatusFile = () => {
    const file = paths.statusFile(input.bead)
    let stat: fs.Stats
    try {
      stat = fs.statSync(file)
    } catch {
      // no status file (yet)
      return
    }
    if (stat.mtimeMs === lastStatusMtime) return
    const doc = readJson(file) as Record<string, unknown> | null
    if (doc === null) return // partly written: the rename or next write brings another event
    lastStatusMtime = stat.mtimeMs
    const status = statusWord(doc.status)
    if (status === null) {
      deps.log("status file has no status this version understands; ignored", { file, status: doc.status })
      return
    }
    const attemptId = typeof doc.attempt_id === "string" ? doc.attempt_id : typeof doc.attempt === "string" ? doc.attempt : null
    send({
      type: "AGENT.SIGNAL",
      signal: {
        attemptId,
        status,
        summary: typeof doc.summary === "string" ? doc.summary : typeof doc.reason === "string" ? doc.reason : null,
        source: "status-file",
        at: Math.floor(stat.mtimeMs),
        payload: doc
      }
    })
  }

  const readSignals = () => {
    const read = readFrom(paths.signalsFile(input.bead), signalsOffset)
    if (read === null || read.data.length === 0) return
    const text = read.data.toString("utf8")
    const end = text.lastIndexOf("\n")
    if (end < 0) return
    signalsOffset += Buffer.byteLength(text.slice(0, end + 1))
    for (const line of text.slice(0, end).split("\n")) {
      if (line.trim() === "") continue
      let doc: Record<string, unknown>
      try {
        doc = JSON.parse(line) as Record<string, unknown>
      } catch {
        // not swallowed: logged and ignored, as a signal line that cannot be read
        deps.log("unreadable signal line ignored", { line })
        continue
      }
      if (doc.type === "input") {
        // `warden send` answered the agent; only this attempt's answers count.
        if (doc.attempt_id === input.attemptId) send({ type: "AGENT.INPUT", at: deps.now(), text: typeof doc.text === "string" ? doc.text : "" })
        continue
      }
      const status = statusWord(doc.status)
      if (status === null) continue
      send({
        type: "AGENT.SIGNAL",
        signal: {
          attemptId: typeof doc.attempt_id === "string" ? doc.attempt_id : null,
          status,
          summary: typeof doc.summary === "string" ? doc.summary : null,
          source: doc.source === "hook" || doc.source === "notify" ? doc.source : "signal",
          at: typeof doc.at === "number" ? doc.at : deps.now(),
          payload: doc.payload ?? null
        }
      })
    }
  }

  const readExit = () => {
    if (exited) return
    // Whatever the agent printed before it exited is read first (its final report, a marker).
    readTranscript()
    const doc = readJson(paths.exitFile(input.bead, input.attemptId)) as Record<string, unknown> | null
    if (doc === null || doc.attempt_id !== input.attemptId) return
    exited = true
    const code = typeof doc.exit_code === "number" ? doc.exit_code : null
    const exitedAt = typeof doc.at === "string" ? Date.parse(doc.at) : NaN
    send({ type: "AGENT.EXITED", at: deps.now(), exitCode: code, lost: false, exitedAt: Number.isFinite(exitedAt) ? exitedAt : null })
  }

  const checkScreen = () => {
    screenTimer = null
    if (stopped || exited) return
    Effect.runPromise(terminals.capture(input.sessionName).pipe(Effect.either)).then((captured) => {
      if (stopped || exited) return
      if (captured._tag === "Left") return
      const reading = readScreen(captured.right, rules)
      if (reading.kind === "dialog") {
        if (!inDialog) {
          inDialog = true
          send({ type: "AGENT.DIALOG", at: deps.now(), text: reading.text, screen: reading.tail })
        }
        return
      }
      if (inDialog) {
        inDialog = false
        send({ type: "AGENT.DIALOG_CLEARED", at: deps.now() })
      }
      if (promptPending) {
        if (ready !== null && screenShows(captured.right, ready)) deliverPrompt(captured.right)
        return
      }
      if (reading.kind === "idle" && outputSinceLaunch) send({ type: "AGENT.IDLE", at: deps.now(), screen: reading.tail })
    })
  }

  // A dialog came before the agent was ready: once it is answered and the agent is ready, type the prompt.
  let promptPending = input.promptPending
  let delivering = false
  const ready = spec.profile.config.prompt.readyPattern === undefined ? null : new RegExp(spec.profile.config.prompt.readyPattern, "m")
  const deliverPrompt = (screen: ReadonlyArray<string>) => {
    if (delivering || input.transcriptPath === null) return
    delivering = true
    const prompt = spec.prompt.ok ? spec.prompt.text : ""
    Effect.runPromise(
      deliverByKeys(input.sessionName, input.transcriptPath, spec.profile.config, prompt, screen).pipe(
        Effect.provideService(Terminals, terminals),
        Effect.catchAll((error) => Effect.succeed({ ok: false as const, error: `could not type the prompt: ${error.message}`, screen }))
      )
    ).then((delivered) => {
      if (stopped) return
      if (delivered.ok) {
        promptPending = false
        markDelivered(paths.launchRecordFile(input.bead, input.attemptId))
        deps.log("prompt typed after the dialog was answered", { bead: input.bead })
      } else send({ type: "AGENT.DELIVERY_FAILED", at: deps.now(), reason: delivered.error, screen: delivered.screen })
      delivering = false
    })
  }

  const scheduleScreenCheck = () => {
    if (waiting.length === 0 && idlePrompt === null && !promptPending) return
    if (screenTimer !== null) clearTimeout(screenTimer)
    // The idle prompt counts only on a screen that stayed quiet for the settle time.
    screenTimer = setTimeout(checkScreen, idlePrompt !== null ? completion.idleSettleMs : 150)
  }

  const onOutput = () => {
    const now = deps.now()
    // At most one OUTPUT event per 500 ms: enough to reset the stall timer, cheap for chatty agents.
    if (now - lastOutputSent >= 500) {
      lastOutputSent = now
      send({ type: "AGENT.OUTPUT", at: now })
    } else if (outputTimer === null) {
      outputTimer = setTimeout(() => {
        outputTimer = null
        lastOutputSent = deps.now()
        send({ type: "AGENT.OUTPUT", at: lastOutputSent })
      }, 500 - (now - lastOutputSent))
    }
  }

  const readTranscript = () => {
    if (input.transcriptPath === null) return
    const read = readFrom(input.transcriptPath, transcriptOffset, 1_000_000)
    if (read === null || read.data.length === 0) return
    const buffer = read.data
    transcriptOffset += buffer.length
    outputSinceLaunch = true
    onOutput()
    if (doneMarker !== null || failedMarker !== null || outputFormat !== "text") {
      const text = partialLine + stripAnsi(buffer.toString("utf8"))
      const lines = text.split(/\r?\n|\r/)
      // A line that never ends (a progress bar, a binary dump) is kept only by its tail: markers are whole short lines.
      partialLine = (lines.pop() ?? "").slice(-MAX_PARTIAL_LINE)
      let reported = false
      for (const raw of lines) {
        const line = raw.trim()
        const lineReport = reportFromLine(outputFormat, line)
        if (lineReport !== null) {
          report = mergeReports(report, lineReport)
          reported = true
        }
        if (input.sources.includes("marker") && doneMarker?.test(line)) {
          send({ type: "AGENT.MARKER", at: deps.now(), line, status: "done" })
        } else if (input.sources.includes("marker") && failedMarker?.test(line)) {
          send({ type: "AGENT.MARKER", at: deps.now(), line, status: "failed" })
        }
      }
      if (reported && report !== null) send({ type: "AGENT.REPORT", at: deps.now(), report })
    }
    scheduleScreenCheck()
  }

  const watchers: fs.FSWatcher[] = []
  fs.mkdirSync(paths.watch, { recursive: true })
  watchers.push(
    fs.watch(paths.watch, (_event, filename) => {
      const name = filename?.toString()
      if (name === statusName) readStatusFile()
      else if (name === signalsName) readSignals()
      else if (name === exitName) readExit()
      else if (name === undefined || name === null) {
        readStatusFile()
        readSignals()
        readExit()
      }
    })
  )
  if (input.transcriptPath !== null) {
    try {
      watchers.push(fs.watch(input.transcriptPath, () => readTranscript()))
    } catch (error) {
      deps.log("transcript cannot be watched; output-based detection is off", { error: String(error) })
    }
  }
  // A session killed from outside without its launcher running its trap leaves no exit file:
  // one shared check of every pane on the socket is the safety net for that, not a completion poll.
  const unwatchLiveness = watchLiveness(terminals, spec.config.livenessIntervalMs, input.sessionName, (pane) => {
    if (exited || stopped) return
    readExit()
    if (exited) return
    exited = true
    if (pane === null) send({ type: "AGENT.EXITED", at: deps.now(), exitCode: null, lost: true })
    else send({ type: "AGENT.EXITED", at: deps.now(), exitCode: pane.deadStatus, lost: false })
  })

  // Whatever arrived between launch and this watch starting.
  readStatusFile()
  readSignals()
  readExit()
  readTranscript()
  scheduleScreenCheck()

  return () => {
    stopped = true
    for (const watcher of watchers) watcher.close()
    unwatchLiveness()
    if (screenTimer !== null) clearTimeout(screenTimer)
    if (outputTimer !== null) clearTimeout(outputTimer)
  }
}
