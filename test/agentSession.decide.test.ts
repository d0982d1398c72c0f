import { describe, expect, it } from "vitest"
import { agentSessionMachine } from "../machines/agentSession.machine.js"
import { decide, initialContext, stamp } from "../machines/agentSession.reducers.js"
import type { SessionContext, SessionEvent, SessionPolicy } from "../machines/agentSession.types.js"

const policy: SessionPolicy = {
  timeoutMs: 60_000,
  stallMs: 10_000,
  sources: ["signal", "marker", "exit"],
  retry: { maxAttempts: 2, backoffInitialMs: 1_000, backoffFactor: 2, backoffMaxMs: 60_000, retryOn: ["agent-failed"] }
}
const context: SessionContext = { ...initialContext({ bead: "bd-1", policy }), attempt: 1, attemptId: "att-1", now: 1_000, deadlineAt: 61_000 }

type ActionRef = string | { readonly type: string; readonly params?: unknown }
interface NodeLike {
  readonly id: string
  readonly entry: ReadonlyArray<unknown>
  readonly exit: ReadonlyArray<unknown>
  readonly transitions: Map<string, ReadonlyArray<{ readonly actions: ReadonlyArray<unknown> }>>
  readonly always?: ReadonlyArray<{ readonly actions: ReadonlyArray<unknown> }>
  readonly states: Record<string, NodeLike>
}

/** Every action the machine's state nodes name: entry, exit, transitions (events, delays, actor done and error), eventless. */
const actionsOf = (node: NodeLike): ActionRef[] => [
  ...(node.entry as ActionRef[]),
  ...(node.exit as ActionRef[]),
  ...[...node.transitions.values()].flat().flatMap((t) => t.actions as ActionRef[]),
  ...(node.always ?? []).flatMap((t) => t.actions as ActionRef[]),
  ...Object.values(node.states).flatMap(actionsOf)
]

describe("agentSession decisions", () => {
  it("are recorded by one parameterised action, decide({ kind, source }), and by no other action", () => {
    const refs = actionsOf(agentSessionMachine.root as unknown as NodeLike).filter((ref) => ref !== undefined && ref !== null)
    const names = new Set(refs.map((ref) => (typeof ref === "string" ? ref : ref.type)))
    // Actions that record something other than a decision: attempt bookkeeping, actor outputs, time, the retry.
    const others = [
      "startAttempt",
      "recordPreflight",
      "recordLaunch",
      "recordCapture",
      "recordVerification",
      "noteResume",
      "noteReport",
      "noteOutput",
      "ignoreSignal",
      "requestCancel",
      "stamp",
      "recordNotify",
      "decideRetry",
      "scheduleRetry",
      "archiveAttempt",
      "finishCancelled"
    ]
    // (`xstate.raise` and `xstate.cancel` are XState's own, arming and disarming the `after` delays.)
    expect([...names].filter((name) => name !== "decide" && !others.includes(name) && !name.startsWith("xstate."))).toEqual([])
    const decisions = refs.flatMap((ref) => (typeof ref === "object" && ref.type === "decide" ? [ref.params as { kind: string; source: string }] : []))
    expect([...new Set(decisions.map((p) => `${p.kind}/${p.source}`))].sort()).toEqual([
      "cancelled/operator",
      "done/agent",
      "done/exit",
      "done/idle-prompt",
      "done/marker",
      "done/verification",
      "failed/agent",
      "failed/exit",
      "failed/launch",
      "failed/marker",
      "failed/preflight",
      "failed/session-lost",
      "failed/verification",
      "resumed/operator",
      "resumed/stall-timer",
      "resumed/waiting",
      "stalled/stall-timer",
      "timeout/deadline",
      "waiting-input/agent",
      "waiting-input/dialog"
    ])
  })

  it("follow from their kind and source: a claim ends the attempt, a verdict is the outcome, a wait is the session's waiting", () => {
    const marker = decide({ context, event: { type: "AGENT.MARKER", at: 2_000, line: "WARDEN_FAILED", status: "failed" } }, { kind: "failed", source: "marker" })
    expect(marker).toMatchObject({ now: 2_000, outcome: "failed", failureReason: "agent-failed", finishedAt: 2_000, claim: { kind: "failed", source: "marker" } })
    const lost = decide({ context, event: { type: "AGENT.EXITED", at: 3_000, exitCode: null, lost: true } }, { kind: "failed", source: "session-lost" })
    expect(lost).toMatchObject({ failureReason: "session-lost", exitCode: null, claim: { source: "session-lost", detail: { reason: "the terminal session disappeared" } } })
    const signal: SessionEvent = { type: "AGENT.SIGNAL", signal: { attemptId: "att-1", status: "waiting", summary: "which file?", source: "hook", at: 2_500 } }
    const waiting = decide({ context, event: signal }, { kind: "waiting-input", source: "agent" })
    expect(waiting).toMatchObject({ waiting: { kind: "waiting-input", source: "hook", detail: { summary: "which file?" } } })
    expect(waiting.claim).toBeUndefined()
    const verdict = decide(
      { context: { ...context, claim: marker.claim! }, event: { type: "xstate.done.actor.0.verify", output: { at: 4_000, overall: "pass", checks: [] } } as never },
      { kind: "done", source: "verification" }
    )
    expect(verdict).toMatchObject({ now: 4_000, outcome: "done", failureReason: null })
    expect(verdict.claim).toBeUndefined()
    const watch = decide({ context, event: { type: "xstate.error.actor.0.watch", error: new Error("no inotify watches left") } as never }, { kind: "failed", source: "launch", step: "watch" })
    expect(watch).toMatchObject({ failureReason: "launch-failed", claim: { source: "launch", detail: { reason: "watch failed: no inotify watches left" } } })
    const timeout = decide({ context, event: { type: "xstate.after.attemptDeadline.agentSession.running.working" } as never }, { kind: "timeout", source: "deadline" })
    expect(timeout).toMatchObject({ now: 61_000, outcome: "timeout", finishedAt: 61_000, claim: { at: 61_000, detail: { reason: "deadline of 60000 ms passed" } } })
  })
})

describe("agentSession guards and actor outputs", () => {
  const guards = agentSessionMachine.implementations.guards as Record<string, (args: { context: SessionContext; event: SessionEvent }, params: unknown) => boolean>
  const cancel: SessionEvent = { type: "CANCEL", at: 2_000 }

  it("throw on an event they were not written for, naming the type they expected, instead of answering false", () => {
    for (const name of ["signalIsStale", "signalUnattributedBeforeLaunch", "signalDone", "signalFailed"]) {
      expect(() => guards[name]!({ context, event: cancel }, undefined), name).toThrow(/AGENT\.SIGNAL/)
    }
    expect(() => guards.markerDone!({ context, event: cancel }, undefined)).toThrow(/AGENT\.MARKER/)
    expect(() => guards.exitedCleanly!({ context, event: cancel }, undefined)).toThrow(/AGENT\.EXITED/)
    expect(() => guards.sessionLost!({ context, event: cancel }, undefined)).toThrow(/AGENT\.EXITED/)
    for (const name of ["preflightPassed", "launched", "verificationPassed"]) {
      expect(() => guards[name]!({ context, event: cancel }, undefined), name).toThrow(/xstate\.done\.actor/)
    }
    expect(() => stamp({ context, event: cancel })).toThrow(/xstate\.done\.actor/)
    expect(guards.signalDone!({ context, event: { type: "AGENT.SIGNAL", signal: { attemptId: null, status: "done", summary: null, source: "signal", at: 1 } } }, undefined)).toBe(true)
  })
})
