import * as fs from "node:fs"
import { verdictFromClaudeHook, verdictFromCodexNotify } from "../agents/hookSignals.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import { sentInputMatcher } from "../sessions/operatorInput.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { isMissing } from "../workspace/missingFile.js"
import { appendSignalLine } from "../sessions/signalLines.js"

/**
 * `warden signal`, the agent's own report, as plain code: agents call it on
 * every hook and turn, so it loads no Effect module (see `signalMain.ts`).
 */
export interface SignalRequest {
  readonly bead: string | undefined
  readonly status: "done" | "failed" | "waiting" | undefined
  readonly summary: string | undefined
  readonly attempt: string | undefined
  /** A form called by an agent CLI directly: a Claude Code hook (JSON on stdin) or Codex's notify (JSON as last argument). */
  readonly from: "claude-hook" | "codex-notify" | undefined
  readonly stdin: () => string
}

/** What the command says and how it exits; nothing is printed here. */
export interface SignalOutcome {
  readonly exitCode: number
  readonly warnings: ReadonlyArray<string>
  /** Set when the signal was refused: the error to print as `warden: <error>`. */
  readonly error: string | null
}

const MAX_PAYLOAD_CHARS = 8_000

/** Keeps a hook payload as evidence, without letting a huge one bloat the records. */
const boundedPayload = (payload: unknown): unknown => {
  const text = JSON.stringify(payload)
  return text.length <= MAX_PAYLOAD_CHARS ? payload : { truncated: true, head: text.slice(0, MAX_PAYLOAD_CHARS) }
}

const normalize = (text: string) => text.replace(/\s+/g, " ").trim()

/** A codex notify payload with each input message that an operator sent replaced by its length. */
const withoutAnswers = (doc: unknown, isAnswer: (text: string) => boolean): unknown => {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return doc
  const record = doc as Record<string, unknown>
  const inputs = record["input-messages"]
  if (!Array.isArray(inputs)) return doc
  return {
    ...record,
    "input-messages": inputs.map((m) => (typeof m === "string" && isAnswer(m) ? `<operator input, ${[...m].length} characters>` : m))
  }
}

const readRun = (paths: WorkspacePaths, bead: string): { status?: unknown; attempt_id?: unknown } | null | "unreadable" => {
  let text: string
  try {
    text = fs.readFileSync(paths.runFile(bead), "utf8")
  } catch (error) {
    // Only a record that is not there means no such bead; one that cannot be read keeps the signal, with a warning.
    return isMissing(error) ? null : "unreadable"
  }
  try {
    return JSON.parse(text) as { status?: unknown; attempt_id?: unknown }
  } catch {
    // not swallowed: the caller reports an unreadable record
    return "unreadable"
  }
}

/**
 * Appends the agent's report to the bead's signal log, where the
 * supervisor's watch sees it at once. Bead and attempt come from the
 * arguments or from `WARDEN_BEAD` / `WARDEN_ATTEMPT`. A bead this workspace
 * has no record of is refused and nothing is written. The hook forms never
 * fail the agent's hook: what they cannot use, they say and ignore (exit 0).
 */
export const runSignal = (paths: WorkspacePaths, input: SignalRequest, env: NodeJS.ProcessEnv = process.env): SignalOutcome => {
  const warnings: string[] = []
  const ignored = (why: string): SignalOutcome => ({ exitCode: 0, warnings: [`warden signal --from ${input.from}: ${why}; ignored`], error: null })
  const refused = (error: string, exitCode = 1): SignalOutcome => ({ exitCode, warnings, error })
  let bead = input.bead ?? env.WARDEN_BEAD
  let status: string | undefined = input.status
  let summary = input.summary ?? null
  let source = "signal"
  let payload: unknown = null
  let known: ReturnType<typeof readRun> | undefined
  if (input.from !== undefined) {
    bead = env.WARDEN_BEAD
    if (bead === undefined || !BEAD_ID.test(bead)) return ignored("WARDEN_BEAD is not set to a bead id (is this an agent's session?)")
    known = readRun(paths, bead)
    if (known === null) return ignored(`no bead ${bead} in the workspace ${paths.root}`)
    let doc: unknown
    try {
      doc = JSON.parse(input.from === "claude-hook" ? input.stdin() : (input.bead ?? ""))
    } catch (error) {
      return ignored(`the payload is not JSON (${(error as Error).message})`)
    }
    const promptFile = env.WARDEN_PROMPT_FILE
    const prompt = promptFile !== undefined && fs.existsSync(promptFile) ? normalize(fs.readFileSync(promptFile, "utf8")) : null
    const isAnswer = sentInputMatcher(paths, bead, env.WARDEN_ATTEMPT)
    const verdict =
      input.from === "claude-hook"
        ? verdictFromClaudeHook(doc)
        : verdictFromCodexNotify(doc, (text) => {
            const said = normalize(text)
            // Exactly the prompt or an answer: codex's title turn quotes the prompt inside a longer input.
            return (prompt !== null && said === prompt) || isAnswer(text)
          })
    if (verdict.status === null) return ignored(verdict.reason)
    status = verdict.status
    summary = verdict.summary
    source = input.from === "claude-hook" ? "hook" : "notify"
    // An operator's answer stays out of the records here too: codex quotes it back among the turn's input messages.
    payload = boundedPayload(input.from === "codex-notify" ? withoutAnswers(doc, isAnswer) : doc)
  }
  if (bead === undefined || bead === "") return refused("which bead? give it as an argument or set WARDEN_BEAD (agents have it set)", 2)
  if (status === undefined) return refused("give --status done|failed|waiting", 2)
  if (!BEAD_ID.test(bead)) return refused(`invalid bead id "${bead}": it must match ${BEAD_ID.source}`, 2)
  // The hook forms read the record already (the bead comes from WARDEN_BEAD there).
  const run = known !== undefined ? known : readRun(paths, bead)
  if (run === null) return refused(`no bead ${bead} in the workspace ${paths.root} (no record at ${paths.runFile(bead)}); nothing was written`)
  const attemptId = input.attempt ?? env.WARDEN_ATTEMPT ?? null
  appendSignalLine(paths, { bead, attempt_id: attemptId, status, summary, source, payload, at: Date.now(), pid: process.pid })
  if (attemptId === null) warnings.push(`warden signal: no attempt id (WARDEN_ATTEMPT): it counts for whichever attempt of ${bead} is running`)
  else if (run === "unreadable") warnings.push(`warden signal: the record of ${bead} cannot be read; the signal is kept`)
  else if (run.status !== "running") warnings.push(`warden signal: ${bead} has no running session; the signal is kept but will be ignored`)
  else if (run.attempt_id !== attemptId) warnings.push(`warden signal: attempt ${attemptId} is not the current attempt ${String(run.attempt_id)}; it will be ignored`)
  return { exitCode: 0, warnings, error: null }
}
