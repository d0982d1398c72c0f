import { describe, expect, it } from "vitest"
import { decide, initialContext, noteOutput, noteResume } from "../machines/agentSession.reducers.js"
import type { SessionPolicy } from "../machines/agentSession.types.js"

const policy: SessionPolicy = {
  timeoutMs: 60_000,
  stallMs: 10_000,
  sources: ["signal", "marker"],
  retry: { maxAttempts: 2, backoffInitialMs: 1_000, backoffFactor: 2, backoffMaxMs: 60_000, retryOn: ["agent-failed"] }
}
const context = { ...initialContext({ bead: "bd-1", policy }), attempt: 1, attemptId: "att-1", now: 1_000 }

describe("agentSession reducers", () => {
  it("are pure functions of (context, event) to the fields they change", () => {
    const update = decide({ context, event: { type: "AGENT.MARKER", at: 2_000, line: "WARDEN_DONE", status: "done" } }, { kind: "done", source: "marker" })
    expect(update).toEqual({
      now: 2_000,
      claim: { kind: "done", source: "marker", at: 2_000, detail: { line: "WARDEN_DONE" } },
      finishedAt: 2_000,
      evidence: [{ kind: "done", source: "marker", at: 2_000, detail: { line: "WARDEN_DONE" } }]
    })
    expect(context.evidence).toEqual([])
  })

  it("throw on an event they were not written for, naming the type they expected, instead of changing nothing", () => {
    expect(() => decide({ context, event: { type: "AGENT.IDLE", at: 2_000, screen: [] } }, { kind: "done", source: "marker" })).toThrow(/AGENT\.MARKER/)
    expect(() => noteResume({ context, event: { type: "ADMIT", at: 2_000 } })).toThrow(/RESUME/)
    expect(() => decide({ context, event: { type: "RESUME", at: 2_000 } }, { kind: "cancelled", source: "operator" })).toThrow(/CANCEL/)
    expect(() => noteOutput({ context, event: { type: "CANCEL", at: 2_000 } })).toThrow(/AGENT\.OUTPUT/)
    expect(noteOutput({ context, event: { type: "AGENT.INPUT", at: 2_000, text: "yes" } })).toEqual({ now: 2_000, lastOutputAt: 2_000 })
  })
})
