import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { SimulatedClock, createActor, fromPromise, type AnyActorRef } from "xstate"
import {
  argusMachine,
  type ActInput,
  type ActOutput,
  type AuditInput,
  type DecideInput,
  type DecideOutput
} from "../machines/argus.machine.js"
import { validate } from "../machines/argus.rules.js"
import type { ArgusPolicy, Observations, ProcessObservation } from "../machines/argus.types.js"
import { argusPolicy } from "./support/argusPolicy.js"

const START = 1_800_000_000_000
const CLAUDE = "/opt/agents/bin/claude"
const ALLOWED = new Set(["restart_service", "kill_pid", "kill_tmux", "alert", "log"])

const policy = (over: Partial<ArgusPolicy> = {}): ArgusPolicy => argusPolicy({ agentExecutables: [CLAUDE], ...over })

const orphan: ProcessObservation = {
  pid: 5001,
  startTicks: 99,
  exe: CLAUDE,
  ageSeconds: 3_600,
  attemptId: "bd-1#1",
  inAgentCgroup: false,
  uid: 1000,
  seenCycles: 0
}

const observe = (at: number): Observations => ({
  at,
  memoryUsedPercent: 50,
  diskUsedPercent: 50,
  load1: 0.1,
  cores: 2,
  services: [{ name: "gateway", state: "inactive", restarts: 0 }],
  orphans: [orphan],
  tmux: [
    { session: "agent-bd-1", bead: "bd-1", live: true },
    { session: "agent-bd-2", bead: "bd-2", live: false }
  ],
  stalledSessions: [],
  recentFailures: []
})

/** Lets promise actors settle (microtasks and one macrotask; the simulated clock does not move). */
const settle = async () => {
  for (let i = 0; i < 3; i += 1) await new Promise((resolve) => setImmediate(resolve))
}

type Pending = { readonly name: "collect" | "decide" | "act" | "audit"; readonly resolve: (value: unknown) => void; readonly reject: (error: unknown) => void }

/**
 * The machine with in-memory actors on a simulated clock. With `gated`, every actor waits until the test
 * settles it (so events can arrive in every state); else each one answers at once. `act` checks, on every
 * call, that its input is exactly what `validate` accepted (verdict `done`) of the decider's last answer.
 */
const harness = (options: { readonly policy?: ArgusPolicy; readonly gated?: boolean; readonly answer?: (input: DecideInput) => unknown } = {}) => {
  const clock = new SimulatedClock()
  clock.set(START)
  const p = options.policy ?? policy()
  const decideCalls: DecideInput[] = []
  const actCalls: ActInput[] = []
  const audits: AuditInput[] = []
  const states: string[] = []
  const problems: string[] = []
  let pending: Pending | null = null
  let lastDecide: { input: DecideInput; output: DecideOutput | null } | null = null
  const gate = <T>(name: Pending["name"], now: () => T): Promise<T> => {
    if (!options.gated) return Promise.resolve(now())
    return new Promise<T>((resolve, reject) => {
      pending = { name, resolve: (value) => resolve(value === undefined ? now() : (value as T)), reject }
    })
  }
  const machine = argusMachine.provide({
    actors: {
      collect: fromPromise<Observations, void>(() => gate("collect", () => observe(clock.now()))),
      decide: fromPromise<DecideOutput, DecideInput>(async ({ input }) => {
        decideCalls.push(input)
        lastDecide = { input, output: null }
        const output = await gate<DecideOutput>("decide", () => ({ actions: options.answer?.(input) ?? [], source: "llm" }))
        lastDecide.output = output
        return output
      }),
      act: fromPromise<ActOutput, ActInput>(({ input }) => {
        actCalls.push(input)
        // Independently: what validate accepts of the decider's last answer, given what the decider was shown.
        const d = lastDecide
        const proposals = d?.output && Array.isArray(d.output.actions) ? d.output.actions : []
        const expected = d
          ? validate(proposals, d.input.observations, d.input.policy, d.input.memory, d.input.observations.at, d.output?.source === "llm" ? "llm" : "rules").filter(
              (decision) => decision.verdict === "done"
            )
          : []
        if (JSON.stringify(input.decisions) !== JSON.stringify(expected)) problems.push(`act got ${JSON.stringify(input.decisions)}, validate accepted ${JSON.stringify(expected)}`)
        for (const decision of input.decisions)
          if (decision.verdict !== "done" || !ALLOWED.has(decision.action.type)) problems.push(`act got ${JSON.stringify(decision)}`)
        return gate("act", () => ({ results: input.decisions.map((_, index) => ({ index, ok: true, detail: "done" })) }))
      }),
      audit: fromPromise<void, AuditInput>(({ input }) => {
        audits.push(input)
        return gate("audit", () => undefined)
      })
    }
  })
  const actor = createActor(machine, {
    input: { policy: p },
    clock,
    inspect: (event) => {
      if (event.type === "@xstate.microstep" && (event.actorRef as AnyActorRef) === actor) {
        const value = (event.snapshot as unknown as { value: unknown }).value
        if (typeof value === "string" && states[states.length - 1] !== value) states.push(value)
      }
    }
  })
  actor.start()
  return {
    actor,
    clock,
    decideCalls,
    actCalls,
    audits,
    states,
    problems,
    takePending: (): Pending | null => {
      const taken = pending
      pending = null
      return taken
    }
  }
}

describe("argus machine", () => {
  it("runs a cycle on the interval, in the state order, and at once on CYCLE", async () => {
    const h = harness({ answer: () => [{ type: "log", target: "memory", reason: "test", message: "hello" }] })
    expect(h.actor.getSnapshot().value).toBe("idle")
    h.clock.increment(299_999)
    await settle()
    expect(h.decideCalls).toHaveLength(0)
    h.clock.increment(1)
    await settle()
    expect(h.states).toEqual(["collecting", "deciding", "validating", "acting", "auditing", "idle"])
    expect(h.audits).toHaveLength(1)
    h.actor.send({ type: "CYCLE", at: h.clock.now() })
    await settle()
    expect(h.audits).toHaveLength(2)
    expect(h.actor.getSnapshot().context.cycles).toHaveLength(2)
    // the interval is re-armed from the end of each cycle
    h.clock.increment(300_000)
    await settle()
    expect(h.audits).toHaveLength(3)
    expect(h.problems).toEqual([])
    h.actor.stop()
  })

  it("act receives only validated decisions of the five types, never a refused one", async () => {
    const hostile = [
      { type: "kill_pid", target: 1, reason: "x" },
      { type: "kill_pid", target: 4242, reason: "x" },
      { type: "restart_service", target: "sshd", reason: "x" },
      { type: "restart_service", target: "gateway; reboot", reason: "x" },
      { type: "run_shell", target: "reboot", reason: "x" },
      { type: "kill_tmux", target: "agent-bd-1", reason: "x" },
      "prose instead of JSON",
      { type: "restart_service", target: "gateway", reason: "down" },
      { type: "kill_tmux", target: "agent-bd-2", reason: "dead bead" }
    ]
    const h = harness({ answer: () => hostile })
    h.actor.send({ type: "CYCLE", at: START })
    await settle()
    expect(h.actCalls).toHaveLength(1)
    expect(h.actCalls[0]!.decisions.map((d) => `${d.action.type}:${d.action.target}`)).toEqual(["restart_service:gateway", "kill_tmux:agent-bd-2"])
    const audited = h.audits[0]!.cycle.decisions
    expect(audited).toHaveLength(hostile.length)
    expect(audited.filter((d) => d.verdict === "refused")).toHaveLength(7)
    expect(h.problems).toEqual([])
    h.actor.stop()
  })

  it("in dry-run nothing is acted on, and every decision is audited", async () => {
    const h = harness({ policy: policy({ dryRun: true }), answer: () => [{ type: "kill_tmux", target: "agent-bd-2", reason: "dead" }] })
    h.actor.send({ type: "CYCLE", at: START })
    await settle()
    expect(h.actCalls).toHaveLength(0)
    expect(h.audits[0]!.cycle.decisions.map((d) => d.verdict)).toEqual(["dry-run"])
    h.actor.stop()
  })

  it("remembers across cycles: an orphan's seenCycles grows until it may be killed, and the last cycle's refusals", async () => {
    const h = harness({
      answer: (input) => [
        { type: "kill_pid", target: 5001, reason: `seen ${input.observations.orphans[0]?.seenCycles}` },
        { type: "restart_service", target: "sshd", reason: "x" }
      ]
    })
    for (let cycle = 0; cycle < 4; cycle += 1) {
      h.clock.increment(300_000)
      await settle()
    }
    expect(h.decideCalls.map((input) => input.observations.orphans[0]!.seenCycles)).toEqual([1, 2, 3, 4])
    expect(h.decideCalls[0]!.memory.refused).toEqual([])
    expect(h.decideCalls[1]!.memory.refused.map((d) => d.why)).toEqual([
      expect.stringMatching(/seen in 1 cycle/),
      expect.stringMatching(/sshd is not configured/)
    ])
    // killed only once seen in three cycles
    expect(h.actCalls.map((call) => call.decisions.map((d) => d.action.type))).toEqual([["kill_pid"], ["kill_pid"]])
    expect(h.problems).toEqual([])
    h.actor.stop()
  })

  it("a failing actor never stops Argus", async () => {
    const h = harness({ gated: true })
    h.actor.send({ type: "CYCLE", at: START })
    await settle()
    h.takePending()!.reject(new Error("proc unreadable"))
    await settle()
    expect(h.actor.getSnapshot().value).toBe("idle")
    expect(h.actor.getSnapshot().context.lastError).toBe("proc unreadable")
    h.actor.stop()
  })

  /**
   * The walk: in every reachable state, every event (CYCLE, the interval's time passing, each pending actor
   * resolving or failing), with the decider answering arbitrary JSON or near-miss actions. `act` checks each
   * call against `validate` (see the harness); here the walk also proves it reached every state.
   */
  it("a walk over reachable states and events: act's input only ever comes from validate", async () => {
    const target = fc.constantFrom<unknown>(1, 4242, 5001, 31337, "5001", "gateway", "sshd", "gateway;x", "agent-bd-1", "agent-bd-2", "agent-x", "memory", "a/b")
    const text = fc.oneof(fc.constantFrom<unknown>("why", "", 7), fc.string({ maxLength: 10 }))
    const action = fc.oneof(
      fc.record({ type: fc.constantFrom("restart_service", "kill_pid", "kill_tmux", "shell"), target, reason: text }),
      fc.record({ type: fc.constantFrom("alert", "log"), target, reason: text, message: text }),
      fc.record({ type: fc.constantFrom("kill_pid", "alert"), target, reason: text, message: text, extra: text }, { requiredKeys: ["type"] }),
      fc.jsonValue({ maxDepth: 2 })
    )
    const answer = fc.oneof(fc.array(action, { maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))
    const step = fc.oneof(
      fc.record({ kind: fc.constant("CYCLE" as const) }),
      fc.record({ kind: fc.constant("time" as const), ms: fc.integer({ min: 0, max: 400_000 }) }),
      fc.record({ kind: fc.constant("resolve" as const), answer }),
      fc.record({ kind: fc.constant("reject" as const) })
    )
    const visited = new Set<string>()
    let acted = 0
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), fc.boolean(), async (steps, dryRun) => {
        const h = harness({ gated: true, policy: policy({ dryRun, maxActionsPerCycle: 3 }) })
        try {
          for (const s of steps) {
            if (s.kind === "CYCLE") h.actor.send({ type: "CYCLE", at: h.clock.now() })
            else if (s.kind === "time") h.clock.increment(s.ms)
            else {
              const pending = h.takePending()
              if (pending?.name === "decide" && s.kind === "resolve") pending.resolve({ actions: s.answer, source: "llm" })
              else if (s.kind === "resolve") pending?.resolve(undefined)
              else pending?.reject(new Error("boom"))
            }
            await settle()
            expect(h.actor.getSnapshot().status).toBe("active")
          }
          for (const state of h.states) visited.add(state)
          acted += h.actCalls.reduce((sum, call) => sum + call.decisions.length, 0)
          expect(h.problems).toEqual([])
          if (dryRun) expect(h.actCalls).toEqual([])
        } finally {
          h.actor.stop()
        }
      }),
      { numRuns: 200, seed: 1512 } // fixed: the states it must reach are reached with this seed, every run
    )
    expect([...visited].sort()).toEqual(["acting", "auditing", "collecting", "deciding", "idle", "validating"])
    expect(acted).toBeGreaterThan(0)
  })
})
