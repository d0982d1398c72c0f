import type { AnyStateMachine, AnyStateNode } from "xstate"
import type { MachineEvent } from "../daemon/machineEvents.js"
import type { DecisionRecord, RunRecord } from "../records/recordSchema.js"
import { eventLabel } from "./machineGraph.js"

/**
 * Replay of a session from its recorded history (`state/history/<bead>.jsonl`,
 * one MachineEvent a line): each state line is a step. Pure (text in, steps
 * out), so the CLI (`warden viz --session B --at N`) and the dashboard step
 * through the same steps.
 */

/** A decision (from the run record) made by the transition of a step. */
export interface StepDecision extends DecisionRecord {
  /** The record's `completion` of its attempt: the decision that completed it (a verification may follow and decide again). */
  readonly completion: boolean
}

export interface ReplayStep {
  /** 1-based, as `--at N` counts. */
  readonly n: number
  /** When the daemon saw the state entered (epoch ms). */
  readonly at: number
  /** XState's state value, as recorded. */
  readonly value: unknown
  /** The active states' ids, outermost first (the machine's own root left out). */
  readonly states: ReadonlyArray<string>
  readonly status: string
  /** The event that caused the step: its type, a short label, its own time and sender when the history lists it. */
  readonly event: { readonly type: string; readonly label: string; readonly at: number | null; readonly source: string | null }
  /** The attempt the step belongs to (a new one starts at each entry into `preflight`). */
  readonly attempt: number
  /** Decisions of that attempt made by this step's transition (from the run record; empty without one). */
  readonly decisions: ReadonlyArray<StepDecision>
}

export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problem: string }

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/** Reads a history file's text: one MachineEvent per line; a line that is not one is named with its number. */
export const parseHistory = (text: string, file: string): Parsed<ReadonlyArray<MachineEvent>> => {
  const events: MachineEvent[] = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch (error) {
      return { ok: false, problem: `${file}:${i + 1}: not JSON (${(error as Error).message})` }
    }
    const problem = machineEventProblem(parsed)
    if (problem !== null) return { ok: false, problem: `${file}:${i + 1}: not a machine event: ${problem}` }
    events.push(parsed as MachineEvent)
  }
  return { ok: true, value: events }
}

const machineEventProblem = (value: unknown): string | null => {
  if (!isRecord(value)) return "expected an object"
  if (typeof value.actor !== "string") return `"actor" must be a string`
  if (typeof value.at !== "number") return `"at" must be a number (epoch ms)`
  if (value.kind === "state") {
    if (value.value === undefined) return `a state line needs "value"`
    if (typeof value.event !== "string") return `"event" of a state line must be a string`
    if (typeof value.status !== "string") return `"status" must be a string`
    return null
  }
  if (value.kind === "event") {
    if (!isRecord(value.event) || typeof value.event.type !== "string") return `"event.type" of an event line must be a string`
    return null
  }
  return `"kind" must be "state" or "event", not ${JSON.stringify(value.kind)}`
}

/**
 * The active state nodes' ids for a recorded state value, outermost first,
 * without the machine's root; a key the machine does not have is named (the
 * history may have been written by another version of the machine).
 */
export const activeStateIds = (machine: AnyStateMachine, value: unknown): Parsed<ReadonlyArray<string>> => {
  const ids: string[] = []
  const walk = (node: AnyStateNode, v: unknown): string | null => {
    const entries: Array<[string, unknown]> = typeof v === "string" ? [[v, undefined]] : isRecord(v) ? Object.entries(v) : []
    if (entries.length === 0 && v !== undefined) return `state value ${JSON.stringify(v)} is neither a name nor an object`
    for (const [key, inner] of entries) {
      const child = (node.states as Record<string, AnyStateNode>)[key]
      if (child === undefined) return `"${key}" is not a state of ${node.id}`
      ids.push(child.id)
      const problem = walk(child, inner)
      if (problem !== null) return problem
    }
    return null
  }
  const problem = walk(machine.root, value)
  return problem === null ? { ok: true, value: ids } : { ok: false, problem }
}

/** Each attempt's decisions from a run record: every decision of the current attempt, the completion of earlier attempts (all the record keeps of them). */
export const attemptDecisions = (run: Pick<RunRecord, "attempt" | "evidence" | "completion" | "previous_attempts">): ReadonlyMap<number, ReadonlyArray<StepDecision>> => {
  const byAttempt = new Map<number, StepDecision[]>()
  const same = (a: DecisionRecord, b: DecisionRecord | null) => b !== null && a.at === b.at && a.kind === b.kind && a.source === b.source
  for (const earlier of run.previous_attempts) {
    if (earlier.completion !== null) byAttempt.set(earlier.attempt, [{ ...earlier.completion, completion: true }])
  }
  const current = run.evidence.map((d) => ({ ...d, completion: same(d, run.completion) }))
  if (run.completion !== null && !current.some((d) => d.completion)) current.push({ ...run.completion, completion: true })
  byAttempt.set(run.attempt, current)
  return byAttempt
}

/**
 * The steps of one actor's recorded history (`session:<bead>`): a step per
 * state line, its cause from the state line's event (with the event line
 * before it, when listed, for the event's own time and sender), its attempt
 * counted from entries into `preflight`. A decision is given to the first step
 * of its attempt (in the bead's last run) that the daemon saw at or after the
 * decision's time and whose event can make a decision of that source: the
 * decision is made by the transition that step records. The history holds no
 * decision itself; without `decisions` (no run record) steps have none.
 */
export const replaySteps = (
  machine: AnyStateMachine,
  events: ReadonlyArray<MachineEvent>,
  actor: string,
  decisions: ReadonlyMap<number, ReadonlyArray<StepDecision>> = new Map()
): Parsed<ReadonlyArray<ReplayStep>> => {
  const preflightId = (machine.root.states as Record<string, AnyStateNode>).preflight?.id
  const steps: Array<Omit<ReplayStep, "decisions"> & { decisions: StepDecision[] }> = []
  let lastEvent: Extract<MachineEvent, { kind: "event" }> | null = null
  let attempt = 0
  let lastRunStart = 0
  for (const event of events) {
    if (event.actor !== actor) continue
    if (event.kind === "event") {
      lastEvent = event
      continue
    }
    const states = activeStateIds(machine, event.value)
    if (!states.ok) return { ok: false, problem: `step ${steps.length + 1} (${JSON.stringify(event.value)}): ${states.problem}` }
    const entersPreflight = preflightId !== undefined && states.value.includes(preflightId)
    const previous = steps[steps.length - 1]
    // A step after one whose actor had ended is a new dispatch of the bead (`warden retry`): its attempts count from 1.
    if (previous !== undefined && previous.status !== "active") {
      attempt = 0
      lastRunStart = steps.length
    }
    if (entersPreflight && (previous === undefined || !previous.states.includes(preflightId))) attempt++
    const cause = lastEvent !== null && lastEvent.event.type === event.event ? lastEvent : null
    const sourceState = previous?.states[previous.states.length - 1] ?? machine.root.id
    steps.push({
      n: steps.length + 1,
      at: event.at,
      value: event.value,
      states: states.value,
      status: event.status,
      event: { type: event.event, label: eventLabel(event.event, sourceState), at: cause?.event.at ?? null, source: cause?.source ?? null },
      attempt: Math.max(1, attempt),
      decisions: []
    })
    lastEvent = null
  }
  for (const [n, list] of decisions) {
    // The run record is the latest dispatch's: its decisions belong to the steps of the last run.
    const ofAttempt = steps.slice(lastRunStart).filter((step) => step.attempt === n)
    if (ofAttempt.length === 0) continue
    for (const decision of list) {
      const at = Date.parse(decision.at)
      // Several steps can share a millisecond (a capture, a verification): the one whose event can make such a decision wins.
      const after = ofAttempt.filter((s) => s.at >= at)
      const fits = DECIDING_EVENTS[decision.source]
      const step = after.find((s) => fits?.test(s.event.type) === true) ?? after[0] ?? ofAttempt[ofAttempt.length - 1]!
      step.decisions.push(decision)
    }
  }
  return { ok: true, value: steps }
}

/** The events by which the session machine makes a decision of each source (`decide` in agentSession.machine.ts). */
const DECIDING_EVENTS: Readonly<Record<string, RegExp>> = {
  signal: /^AGENT\.SIGNAL$/,
  hook: /^AGENT\.SIGNAL$/,
  notify: /^AGENT\.SIGNAL$/,
  "status-file": /^AGENT\.SIGNAL$/,
  marker: /^AGENT\.MARKER$/,
  "idle-prompt": /^AGENT\.IDLE$/,
  exit: /^AGENT\.EXITED$/,
  "session-lost": /^AGENT\.EXITED$/,
  deadline: /^xstate\.after\.attemptDeadline\./,
  "stall-timer": /^(xstate\.after\.stallTime\.|AGENT\.OUTPUT$)/,
  dialog: /^AGENT\.DIALOG$/,
  waiting: /^(AGENT\.DIALOG_CLEARED|AGENT\.OUTPUT)$/,
  operator: /^(CANCEL|AGENT\.INPUT)$/,
  preflight: /^xstate\.(done|error)\.actor\..*\.preflight$/,
  launch: /^(xstate\.(done|error)\.actor\..*\.(launching|running)|AGENT\.DELIVERY_FAILED)$/,
  verification: /^xstate\.(done|error)\.actor\..*\.verifying$/
}

export { marksAt } from "./marks.js"

/** The lines that tell a step: its number, the event that caused it, the state reached, the decisions with their evidence. */
export const stepCaption = (step: ReplayStep, total: number): ReadonlyArray<string> => {
  const time = new Date(step.event.at ?? step.at).toISOString()
  const reached = step.states[step.states.length - 1] ?? "?"
  const lines = [`step ${step.n} of ${total} (attempt ${step.attempt}): ${step.event.label} -> ${reached} at ${time}${step.event.source === null ? "" : ` from ${step.event.source}`}`]
  for (const decision of step.decisions) lines.push(`${decision.completion ? "completion" : "decision"}: ${decision.kind} by ${decision.source} at ${decision.at}${evidenceText(decision.detail)}`)
  return lines
}

const evidenceText = (detail: unknown): string => {
  if (!isRecord(detail)) return ""
  const parts: string[] = []
  for (const key of ["reason", "summary", "line", "exitCode"]) if (detail[key] !== undefined && detail[key] !== null) parts.push(`${key}=${JSON.stringify(detail[key])}`)
  if (Array.isArray(detail.screen) && detail.screen.length > 0) parts.push(`screen=${JSON.stringify(detail.screen.slice(-3))}`)
  return parts.length === 0 ? "" : `: ${parts.join(" ")}`
}
