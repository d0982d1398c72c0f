/**
 * Argus's pure decisions: the rules decider, THE allowlist (`validate`, applied to every decision whatever
 * its source) and what a cycle leaves in memory. Pure: imports only Argus's types.
 *
 * Rules (documented thresholds):
 * - memory or disk above 90%: an `alert` (target `memory` / `disk`); from 80% to 90% inclusive: a `log` line;
 * - a configured service in state `failed`: an `alert` (target `service:<name>`); a configured service that is
 *   down in a state nobody handles (not `starting`, `running*`, `backingOff`, `restarting*`, `stopping`,
 *   `stopped` (the operator's choice) nor `failed` (the restart limit's)): a `restart_service`, outside its cooldown;
 * - an orphan agent process seen in at least `orphanCycles` cycles and at least `graceSeconds` old: a `kill_pid`;
 * - an `agent-*` tmux session whose bead is not live, seen in at least `orphanCycles` cycles: a `kill_tmux`;
 * - a session stalled or waiting for input for `stalledSeconds` (15 minutes by default) or more: an `alert`
 *   (target `session:<bead>`).
 * Alerts already sent within the hour and restarts within their cooldown are not proposed again.
 */
import type {
  AcceptedDecision,
  ArgusAction,
  ArgusMemory,
  ArgusPolicy,
  Decision,
  Observations,
  ProcessObservation
} from "./argus.types.js"

export const ALERT_PERCENT = 90
export const LOG_PERCENT = 80
export const ALERT_DEDUP_MS = 60 * 60 * 1000
/** After Argus's 1st restart of a service: 60 s; after the 2nd: 300 s; after the 3rd: an hour (the seed's ladder). */
export const RESTART_COOLDOWNS_MS: ReadonlyArray<number> = [60_000, 300_000, 60 * 60 * 1000]
export const RESTART_WINDOW_MS = 60 * 60 * 1000

/** A service name: no shell metacharacters, no path separators. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** A tmux session Argus may end: the agents' naming only. */
export const AGENT_SESSION = /^agent-[A-Za-z0-9+._-]{1,120}$/
/** A problem key (alert, log): a name with `:` separators, never a path or a shell word. */
export const PROBLEM_KEY = /^[A-Za-z0-9][A-Za-z0-9:._@+-]{0,127}$/
const MAX_REASON = 1_000
const MAX_MESSAGE = 2_000
/** Control characters other than tab and newline. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/

const SHAPES: Readonly<Record<ArgusAction["type"], ReadonlyArray<string>>> = {
  restart_service: ["type", "target", "reason"],
  kill_pid: ["type", "target", "reason"],
  kill_tmux: ["type", "target", "reason"],
  alert: ["type", "target", "reason", "message"],
  log: ["type", "target", "reason", "message"]
}

const SERVICE_HANDLED = new Set(["starting", "backingOff", "stopping", "stopped", "failed"])

/** Whether a service state is one the service machine (or the operator) handles: never restarted by Argus. */
const serviceHandled = (state: string): boolean =>
  SERVICE_HANDLED.has(state) || /^running(\.|$)/.test(state) || /^restarting(\.|$)/.test(state)

export const orphanKey = (orphan: Pick<ProcessObservation, "pid" | "startTicks">): string => `${orphan.pid}:${orphan.startTicks}`
export const tmuxKey = (session: string): string => `tmux:${session}`

/** Cycles a key has been seen in, this one included. */
const sightings = (memory: ArgusMemory, key: string): number => (own(memory.orphanSeen, key) ?? 0) + 1

/** A record's own entry (never one of Object.prototype's, whatever the key). */
const own = <T>(record: Readonly<Record<string, T>>, key: string): T | undefined => (Object.hasOwn(record, key) ? record[key] : undefined)

/** The observations with each orphan's `seenCycles` counted from memory (the machine does this before deciding). */
export const countSightings = (obs: Observations, memory: ArgusMemory): Observations => ({
  ...obs,
  orphans: obs.orphans.map((orphan) => ({ ...orphan, seenCycles: sightings(memory, orphanKey(orphan)) }))
})

/**
 * Argus's restarts of a service that still count: the latest ones, each within an hour of the next, the last
 * within the hour of `now` (at most three: the ladder has three rungs). A quiet hour starts the ladder afresh.
 */
export const restartChain = (times: ReadonlyArray<number>, now: number): number[] => {
  const sorted = [...times].sort((a, b) => a - b)
  const chain: number[] = []
  let next = now
  for (let i = sorted.length - 1; i >= 0 && chain.length < RESTART_COOLDOWNS_MS.length; i -= 1) {
    if (next - sorted[i]! >= RESTART_WINDOW_MS) break
    chain.unshift(sorted[i]!)
    next = sorted[i]!
  }
  return chain
}

/** When a restart of `service` is allowed again (null: now): 60 s after Argus's 1st, 300 s after its 2nd, an hour after its 3rd. */
export const restartAllowedAt = (memory: ArgusMemory, service: string, now: number): number | null => {
  const chain = restartChain(own(memory.restartsDone, service) ?? [], now)
  if (chain.length === 0) return null
  const last = chain[chain.length - 1]!
  const cooldown = RESTART_COOLDOWNS_MS[chain.length - 1]!
  return now - last >= cooldown ? null : last + cooldown
}

const alertedRecently = (memory: ArgusMemory, key: string, now: number): boolean => {
  const last = own(memory.alertsSent, key)
  return last !== undefined && now - last < ALERT_DEDUP_MS
}

/** The rules decider: deterministic, from the thresholds above. */
export const decideByRules = (obs: Observations, policy: ArgusPolicy, memory: ArgusMemory): ArgusAction[] => {
  const now = obs.at
  const actions: ArgusAction[] = []
  const alert = (target: string, message: string, reason: string) => {
    if (!alertedRecently(memory, target, now)) actions.push({ type: "alert", target, reason, message })
  }
  for (const [target, used] of [
    ["memory", obs.memoryUsedPercent],
    ["disk", obs.diskUsedPercent]
  ] as const) {
    if (used > ALERT_PERCENT) alert(target, `${target} ${used.toFixed(1)}% used`, `above ${ALERT_PERCENT}%`)
    else if (used >= LOG_PERCENT)
      actions.push({ type: "log", target, reason: `between ${LOG_PERCENT} and ${ALERT_PERCENT}%`, message: `${target} ${used.toFixed(1)}% used` })
  }
  for (const service of obs.services) {
    if (!policy.services.includes(service.name)) continue
    if (service.state === "failed")
      alert(`service:${service.name}`, `service ${service.name} failed after ${service.restarts} restarts`, "the service's restart limit gave up")
    else if (!serviceHandled(service.state) && restartAllowedAt(memory, service.name, now) === null)
      actions.push({ type: "restart_service", target: service.name, reason: `down (state ${service.state}) and not failed` })
  }
  for (const orphan of obs.orphans) {
    if (orphan.seenCycles >= policy.orphanCycles && orphan.ageSeconds >= policy.graceSeconds)
      actions.push({
        type: "kill_pid",
        target: orphan.pid,
        reason: `orphan ${orphan.exe} seen in ${orphan.seenCycles} cycles, ${Math.round(orphan.ageSeconds)} s old`
      })
  }
  for (const session of obs.tmux) {
    if (!session.live && sightings(memory, tmuxKey(session.session)) >= policy.orphanCycles)
      actions.push({
        type: "kill_tmux",
        target: session.session,
        reason: session.bead === null ? "a session with no record" : `bead ${session.bead} is not live`
      })
  }
  for (const stalled of obs.stalledSessions) {
    if (stalled.forSeconds >= policy.stalledSeconds)
      alert(`session:${stalled.bead}`, `${stalled.bead} ${stalled.state} for ${Math.round(stalled.forSeconds)} s`, `over ${policy.stalledSeconds} s`)
  }
  return actions
}

/** A bounded, JSON-safe summary of what was asked, for the audit of a refusal. */
const summarize = (raw: unknown): Decision["action"] => {
  const clip = (value: unknown): unknown =>
    typeof value === "string" ? value.slice(0, 200).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?") : typeof value === "number" || typeof value === "boolean" || value === null ? value : `(${typeof value})`
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { type: `(${raw === null ? "null" : Array.isArray(raw) ? "array" : typeof raw})` }
  const record = raw as Record<string, unknown>
  const summary: { type: string; target?: unknown; reason?: unknown } = {
    type: typeof record.type === "string" ? record.type.slice(0, 64).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?") : `(${typeof record.type})`
  }
  if ("target" in record) summary.target = clip(record.target)
  if ("reason" in record) summary.reason = clip(record.reason)
  return summary
}

type Checked = { readonly ok: true; readonly action: ArgusAction } | { readonly ok: false; readonly why: string }

const isText = (value: unknown, max: number): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= max && !CONTROL.test(value)

/** The shape: exactly one of the five, with exactly its keys and well-formed fields. */
const checkShape = (raw: unknown): Checked => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, why: "not an action object" }
  const record = raw as Record<string, unknown>
  const type = record.type
  if (typeof type !== "string" || !Object.hasOwn(SHAPES, type)) return { ok: false, why: `unknown action type ${JSON.stringify(String(type).slice(0, 64))}: allowed are ${Object.keys(SHAPES).join(", ")}` }
  const keys = SHAPES[type as ArgusAction["type"]]
  const extra = Object.keys(record).filter((key) => !keys.includes(key))
  if (extra.length > 0) return { ok: false, why: `unexpected field(s) ${extra.slice(0, 5).join(", ")} in ${type}` }
  const missing = keys.filter((key) => !Object.hasOwn(record, key))
  if (missing.length > 0) return { ok: false, why: `missing field(s) ${missing.join(", ")} in ${type}` }
  if (!isText(record.reason, MAX_REASON)) return { ok: false, why: `reason must be text of 1 to ${MAX_REASON} characters` }
  const target = record.target
  switch (type) {
    case "kill_pid":
      if (typeof target !== "number" || !Number.isSafeInteger(target)) return { ok: false, why: "kill_pid's target must be an integer pid" }
      return { ok: true, action: { type, target, reason: record.reason } }
    case "restart_service":
      if (typeof target !== "string" || !SERVICE_NAME.test(target)) return { ok: false, why: "restart_service's target is not a service name (letters, digits, . _ -; no shell metacharacters or paths)" }
      return { ok: true, action: { type, target, reason: record.reason } }
    case "kill_tmux":
      if (typeof target !== "string" || !AGENT_SESSION.test(target)) return { ok: false, why: "kill_tmux's target is not an agent-* session name" }
      return { ok: true, action: { type, target, reason: record.reason } }
    default: {
      if (typeof target !== "string" || !PROBLEM_KEY.test(target)) return { ok: false, why: `${type}'s target is not a problem key (letters, digits, : . _ @ + -)` }
      if (!isText(record.message, MAX_MESSAGE)) return { ok: false, why: `${type}'s message must be text of 1 to ${MAX_MESSAGE} characters` }
      return { ok: true, action: { type: type as "alert" | "log", target, reason: record.reason, message: record.message } }
    }
  }
}

/** What accepted actions earlier in this cycle add to memory's constraints. */
interface CycleState {
  readonly restarted: Set<string>
  readonly killedPids: Set<number>
  readonly killedSessions: Set<string>
  readonly alerted: Set<string>
}

/** The allowlist's rules for one well-shaped action; null when allowed, else why not. */
const refusal = (action: ArgusAction, obs: Observations, policy: ArgusPolicy, memory: ArgusMemory, now: number, cycle: CycleState): string | null => {
  switch (action.type) {
    case "restart_service": {
      if (!policy.services.includes(action.target)) return `service ${action.target} is not configured`
      const observed = obs.services.find((service) => service.name === action.target)
      if (observed?.state === "failed") return `service ${action.target} is failed (its restart limit gave up; the operator starts it)`
      if (cycle.restarted.has(action.target)) return `service ${action.target} is already restarted in this cycle`
      const allowedAt = restartAllowedAt(memory, action.target, now)
      if (allowedAt !== null) return `service ${action.target} is within its restart cooldown (again in ${Math.ceil((allowedAt - now) / 1000)} s)`
      return null
    }
    case "kill_pid": {
      const pid = action.target
      if (pid <= 1) return `pid ${pid} is never killed`
      if (policy.protectedPids.includes(pid)) return `pid ${pid} is protected (the daemon, its ancestors or its services)`
      if (cycle.killedPids.has(pid)) return `pid ${pid} is already killed in this cycle`
      const orphan = obs.orphans.find((candidate) => candidate.pid === pid)
      if (orphan === undefined) return `pid ${pid} is not an observed orphan agent process`
      if (!policy.agentExecutables.includes(orphan.exe)) return `pid ${pid} runs ${orphan.exe}, not an agent's program`
      if (orphan.uid !== policy.agentsUid) return `pid ${pid} is owned by uid ${orphan.uid}, not the agents' user`
      if (orphan.attemptId === null && !orphan.inAgentCgroup) return `pid ${pid} carries no finished attempt's WARDEN_ATTEMPT and is in no agent cgroup`
      if (orphan.ageSeconds < policy.graceSeconds) return `pid ${pid} is ${Math.floor(orphan.ageSeconds)} s old, younger than the grace age ${policy.graceSeconds} s`
      if (orphan.seenCycles < policy.orphanCycles) return `pid ${pid} is seen in ${orphan.seenCycles} cycle(s), fewer than ${policy.orphanCycles}`
      return null
    }
    case "kill_tmux": {
      const session = obs.tmux.find((candidate) => candidate.session === action.target)
      if (session === undefined) return `session ${action.target} is not an observed agent session`
      if (session.live) return `session ${action.target} belongs to a live bead`
      if (cycle.killedSessions.has(action.target)) return `session ${action.target} is already ended in this cycle`
      return null
    }
    case "alert":
      if (cycle.alerted.has(action.target) || alertedRecently(memory, action.target, now)) return `deduplicated: ${action.target} was alerted within the hour`
      return null
    case "log":
      return null
  }
}

/**
 * THE allowlist, applied to every decision whatever its source: one Decision per input action, in order.
 * Anything not exactly one of the five shapes, or outside its rules, is refused with why; after
 * `maxActionsPerCycle` accepted actions the rest are refused; in dry-run the accepted ones are `dry-run`.
 */
export const validate = (
  actions: ReadonlyArray<unknown>,
  obs: Observations,
  policy: ArgusPolicy,
  memory: ArgusMemory,
  now: number,
  source: "rules" | "llm"
): Decision[] => {
  const cycle: CycleState = { restarted: new Set(), killedPids: new Set(), killedSessions: new Set(), alerted: new Set() }
  let accepted = 0
  return actions.map((raw): Decision => {
    const refuse = (why: string): Decision => ({ action: summarize(raw), source, verdict: "refused", why })
    if (accepted >= policy.maxActionsPerCycle) return refuse(`over the cap of ${policy.maxActionsPerCycle} actions per cycle`)
    const shaped = checkShape(raw)
    if (!shaped.ok) return refuse(shaped.why)
    const why = refusal(shaped.action, obs, policy, memory, now, cycle)
    if (why !== null) return refuse(why)
    const action = shaped.action
    if (action.type === "restart_service") cycle.restarted.add(action.target)
    else if (action.type === "kill_pid") cycle.killedPids.add(action.target)
    else if (action.type === "kill_tmux") cycle.killedSessions.add(action.target)
    else if (action.type === "alert") cycle.alerted.add(action.target)
    accepted += 1
    return { action, source, verdict: policy.dryRun ? "dry-run" : "done", why: `allowed: ${action.reason}` }
  })
}

export const isAccepted = (decision: Decision): decision is AcceptedDecision => decision.verdict !== "refused"

/** What a cycle leaves in memory: sightings counted (a key not seen now is dropped), restarts and alerts (done or dry-run) noted, refusals kept. */
export const rememberCycle = (memory: ArgusMemory, obs: Observations, decisions: ReadonlyArray<Decision>, now: number): ArgusMemory => {
  const orphanSeen: Record<string, number> = Object.create(null)
  for (const orphan of obs.orphans) orphanSeen[orphanKey(orphan)] = sightings(memory, orphanKey(orphan))
  for (const session of obs.tmux) if (!session.live) orphanSeen[tmuxKey(session.session)] = sightings(memory, tmuxKey(session.session))
  const restartsDone: Record<string, number[]> = Object.create(null)
  for (const [service, times] of Object.entries(memory.restartsDone)) {
    const chain = restartChain(times, now)
    if (chain.length > 0) restartsDone[service] = chain
  }
  const alertsSent: Record<string, number> = Object.create(null)
  for (const [key, at] of Object.entries(memory.alertsSent)) if (now - at < ALERT_DEDUP_MS) alertsSent[key] = at
  for (const decision of decisions) {
    if (!isAccepted(decision)) continue
    const action = decision.action
    if (action.type === "restart_service") restartsDone[action.target] = [...(own(restartsDone, action.target) ?? []), now]
    else if (action.type === "alert") alertsSent[action.target] = now
  }
  return { orphanSeen, restartsDone, alertsSent, refused: decisions.filter((decision) => decision.verdict === "refused") }
}
