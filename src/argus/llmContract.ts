/**
 * The seed's prompt contract with Argus's model, both ways: what it is asked (the observations, what it
 * may do, what it did and was refused lately) and how its answer is read: a JSON object
 * `{assessment, actions: [{type, target, reason, message, observation}], observations}`, in a code fence
 * or not. The answer is untrusted text: reading it only extracts proposals, which the allowlist
 * (`validate`) then judges like any rule's. Pure.
 */
import { ALERT_PERCENT, LOG_PERCENT } from "../../machines/argus.rules.js"
import type { ArgusMemory, ArgusPolicy, Observations } from "../../machines/argus.types.js"

export const LLM_LIMITS = {
  /** An answer longer than this is not read at all. */
  maxAnswerChars: 64 * 1024,
  /** Proposals read from one answer; the rest are refused whole, in one audited line. */
  maxProposals: 50,
  /** The assessment kept with the cycle. */
  maxAssessmentChars: 2_000
} as const

/** Marks Argus's request to its model (a test's stand-in server tells it from other calls by it). */
export const PROMPT_MARKER = "ARGUS-OBSERVATIONS"

export interface LlmPrompt {
  readonly system: string
  readonly user: string
}

/**
 * What in the observations calls for judgement; empty when all is normal, and then the model is not
 * asked (the rules' answer, which is then nothing or a log line, stands).
 */
export const findings = (obs: Observations): string[] => {
  const found: string[] = []
  if (obs.memoryUsedPercent >= LOG_PERCENT) found.push(`memory ${obs.memoryUsedPercent.toFixed(1)}% used`)
  if (obs.diskUsedPercent >= LOG_PERCENT) found.push(`disk ${obs.diskUsedPercent.toFixed(1)}% used`)
  if (obs.cores > 0 && obs.load1 > 2 * obs.cores) found.push(`load ${obs.load1} on ${obs.cores} cores`)
  for (const service of obs.services) if (!/^running\.healthy$|^stopped$/.test(service.state)) found.push(`service ${service.name} ${service.state}`)
  for (const orphan of obs.orphans) found.push(`orphan pid ${orphan.pid} (${orphan.exe})`)
  for (const session of obs.tmux) if (!session.live) found.push(`tmux ${session.session} with no live bead`)
  for (const stalled of obs.stalledSessions) found.push(`${stalled.bead} ${stalled.state} for ${Math.round(stalled.forSeconds)} s`)
  for (const failure of obs.recentFailures) found.push(`${failure.count} recent failure(s): ${failure.reason}`)
  return found
}

const SYSTEM = `You are Argus, the ops watchdog of a server where AI coding agents work on beads in tmux sessions.
You are given observations of the server and answer with what to do, as JSON only, in this shape:
{"assessment": "one or two sentences", "actions": [{"type": "...", "target": "...", "reason": "...", "message": "...", "observation": "..."}], "observations": ["..."]}
The only action types are:
- restart_service: target a configured service's name; never one that is "failed" (its restart limit gave up).
- kill_pid: target an orphan agent process's pid (a number) from the observations' orphans, only when it has been seen in enough cycles and is older than the grace age.
- kill_tmux: target an agent-* tmux session from the observations whose bead is not live.
- alert: target a problem key (letters, digits, ":" "." "_" "-"), with a message for the operator.
- log: target a problem key, with a message noted in the observations log.
Anything else is refused. Every action is checked against the same rules before anything happens, so propose only what the observations justify; an empty list is a fine answer.`

/** The question for one cycle: the observations, the policy's facts, and what Argus did and was refused lately. */
export const argusPrompt = (obs: Observations, policy: ArgusPolicy, memory: ArgusMemory): LlmPrompt => {
  const facts = {
    configured_services: policy.services,
    grace_seconds: policy.graceSeconds,
    orphan_cycles: policy.orphanCycles,
    max_actions_per_cycle: policy.maxActionsPerCycle,
    thresholds: { alert_percent: ALERT_PERCENT, log_percent: LOG_PERCENT, stalled_alert_seconds: policy.stalledSeconds }
  }
  const lately = {
    restarts_done: memory.restartsDone,
    alerts_sent: memory.alertsSent,
    refused_last_cycle: memory.refused.slice(0, 20).map((d) => ({ action: d.action, why: d.why }))
  }
  const observed = {
    at: new Date(obs.at).toISOString(),
    memory_used_percent: obs.memoryUsedPercent,
    disk_used_percent: obs.diskUsedPercent,
    load1: obs.load1,
    cores: obs.cores,
    services: obs.services,
    orphans: obs.orphans.map((o) => ({ pid: o.pid, exe: o.exe, age_seconds: Math.round(o.ageSeconds), seen_cycles: o.seenCycles })),
    tmux: obs.tmux,
    stalled_sessions: obs.stalledSessions,
    recent_failures: obs.recentFailures,
    findings: findings(obs)
  }
  return {
    system: SYSTEM,
    user: `${PROMPT_MARKER}\n${JSON.stringify(observed, null, 1)}\n\nPOLICY\n${JSON.stringify(facts)}\n\nLATELY\n${JSON.stringify(lately)}\n\nAnswer with the JSON object only.`
  }
}

export type ParsedAnswer =
  | {
      readonly ok: true
      /** Proposals for the allowlist, each normalised from the seed's shape; still untrusted. */
      readonly actions: ReadonlyArray<unknown>
      readonly assessment: string | null
      /** What was refused whole: proposals past `maxProposals`. */
      readonly rejected: ReadonlyArray<string>
    }
  | { readonly ok: false; readonly why: string }

/** Control characters other than tab and newline, dropped from text kept for the audit. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g

const FENCE = /```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```/

/** The JSON text of an answer: a fenced block's content when there is one, else the whole answer. */
const jsonText = (answer: string): string => {
  const fenced = FENCE.exec(answer)
  return (fenced === null ? answer : fenced[1]!).trim()
}

/**
 * One of the seed's actions, in the allowlist's shape: `message` (or, absent, `observation`) kept only for
 * `alert` and `log`, a decimal pid given as text read as a number for `kill_pid`. Unknown fields stay, so
 * the allowlist refuses them; nothing here changes what an action would do or to what.
 */
export const normalizeAction = (raw: unknown): unknown => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw
  const { message, observation, ...rest } = raw as Record<string, unknown>
  const action: Record<string, unknown> = { ...rest }
  if (action.type === "alert" || action.type === "log") {
    const text = typeof message === "string" && message.trim() !== "" ? message : observation
    if (text !== undefined && text !== null) action.message = text
  }
  // Otherwise `message` and `observation` are the contract's notes on an action that carries no text (the
  // seed's answers have all five fields on every action): dropped, as they change nothing it would do.
  if (action.type === "kill_pid" && typeof action.target === "string" && /^[0-9]{1,10}$/.test(action.target)) action.target = Number(action.target)
  return action
}

/** Reads a model's answer; `ok: false` (the rules then decide) when it is not the contract's JSON object. */
export const parseAnswer = (answer: string): ParsedAnswer => {
  if (answer.length > LLM_LIMITS.maxAnswerChars) return { ok: false, why: `the answer is ${answer.length} characters, over ${LLM_LIMITS.maxAnswerChars}` }
  const text = jsonText(answer)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // Prose, or broken JSON: the rules decide.
    return { ok: false, why: `the answer is not JSON: ${JSON.stringify(text.slice(0, 120).replace(CONTROL, ""))}` }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, why: "the answer is not a JSON object" }
  const record = value as Record<string, unknown>
  if (!Array.isArray(record.actions)) return { ok: false, why: "the answer has no list of actions" }
  const assessment = typeof record.assessment === "string" ? record.assessment.replace(CONTROL, "").slice(0, LLM_LIMITS.maxAssessmentChars) : null
  const over = record.actions.length - LLM_LIMITS.maxProposals
  return {
    ok: true,
    actions: record.actions.slice(0, LLM_LIMITS.maxProposals).map(normalizeAction),
    assessment,
    rejected: over > 0 ? [`${over} further action(s) ignored: an answer may propose at most ${LLM_LIMITS.maxProposals}`] : []
  }
}
