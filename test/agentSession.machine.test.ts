import { describe, expect, it } from "vitest"
import { SimulatedClock, createActor, fromCallback, fromPromise, initialTransition, transition } from "xstate"
import { agentSessionMachine } from "../machines/agentSession.machine.js"
import type { AgentSignal, SessionEvent, SessionPolicy, VerifyOutput, WatchInput } from "../machines/agentSession.types.js"
import { flattenState } from "../src/records/buildRecords.js"
import { sessionImplementations } from "../src/sessions/sessionActors.js"
import { waitForSnapshot } from "./support/waitForSnapshot.js"

const policy = (over: Partial<SessionPolicy> = {}, retry: Partial<SessionPolicy["retry"]> = {}): SessionPolicy => ({
  timeoutMs: 60_000,
  stallMs: 10_000,
  sources: ["signal", "status-file", "marker", "idle-prompt", "exit"],
  ...over,
  retry: {
    maxAttempts: 3,
    backoffInitialMs: 1_000,
    backoffFactor: 2,
    backoffMaxMs: 60_000,
    retryOn: ["launch-failed", "agent-failed", "agent-exited", "session-lost", "timeout"],
    ...retry
  }
})

interface HarnessOptions {
  readonly policy?: SessionPolicy
  /** Preflight result per attempt number (default: passes). */
  readonly preflightOk?: (attempt: number) => boolean
  readonly launchOk?: (attempt: number) => boolean
  readonly verify?: (attempt: number) => VerifyOutput["overall"]
  /** Holds a stage's actor until the test resolves the promise. */
  readonly gate?: {
    readonly launch?: Promise<void>
    readonly verify?: Promise<void>
    readonly capture?: Promise<void>
    readonly notify?: Promise<void>
    readonly remember?: Promise<void>
  }
}

/** The machine with in-memory actors on a simulated clock; the watcher hands its `sendBack` to the test. */
const harness = (options: HarnessOptions = {}) => {
  const clock = new SimulatedClock()
  clock.set(1_000_000)
  const watchers: Array<{ input: WatchInput; sendBack: (event: SessionEvent) => void; stopped: boolean }> = []
  const calls: string[] = []
  let ids = 0
  const machine = agentSessionMachine.provide({
    actors: {
      preflight: fromPromise(async ({ input }) => {
        calls.push(`preflight#${input.attempt}`)
        const ok = options.preflightOk?.(input.attempt) ?? true
        return { at: clock.now(), attemptId: `att-${++ids}`, ok, checks: [{ name: "repo-exists", ok, detail: ok ? "/repo" : "/repo is not a directory" }] }
      }),
      launch: fromPromise(async ({ input }) => {
        calls.push(`launch#${input.attempt}`)
        await options.gate?.launch
        const ok = options.launchOk?.(input.attempt) ?? true
        return {
          at: clock.now(),
          ok,
          error: ok ? null : "tmux refused",
          sessionName: "agent-bd-1",
          transcriptPath: "/t.log",
          baseCommit: "abc123",
          screen: [],
          signalsOffset: 0,
          promptPending: false
        }
      }),
      watchAgent: fromCallback<SessionEvent, WatchInput>(({ input, sendBack }) => {
        const watcher = { input, sendBack, stopped: false }
        watchers.push(watcher)
        return () => {
          watcher.stopped = true
        }
      }),
      capture: fromPromise(async () => {
        calls.push("capture")
        await options.gate?.capture
        return { at: clock.now(), outputSummary: "last screen", screen: ["last screen"], report: null }
      }),
      verify: fromPromise(async ({ input }) => {
        calls.push(`verify#${input.attempt}`)
        await options.gate?.verify
        const overall = options.verify?.(input.attempt) ?? "pass"
        return {
          at: clock.now(),
          overall,
          checks: [{ name: "changes", status: overall, durationMs: 1, exitCode: null, outputTail: "", detail: overall === "pass" ? "1 new commit(s)" : "nothing changed" }],
          diffStat: "",
          newCommits: overall === "pass" ? ["abc124 work"] : []
        }
      }),
      clean: fromPromise(async () => {
        calls.push("clean")
        return { at: clock.now() }
      }),
      notify: fromPromise(async () => {
        calls.push("notify")
        await options.gate?.notify
        return { at: clock.now() }
      }),
      remember: fromPromise(async () => {
        calls.push("remember")
        await options.gate?.remember
        return { at: clock.now() }
      })
    }
  })
  const actor = createActor(machine, { clock, input: { bead: "bd-1", policy: options.policy ?? policy() } })
  const states: string[] = []
  actor.subscribe((snapshot) => {
    const state = flattenState(snapshot.value)
    if (states[states.length - 1] !== state) states.push(state)
  })
  actor.start()
  const state = () => flattenState(actor.getSnapshot().value)
  /** Waits until the session is in `state` (`running.working`, or a parent such as `running`). */
  const until = (state: string) =>
    waitForSnapshot(actor, `state ${state}`, (snapshot) => {
      const flat = flattenState(snapshot.value)
      return flat === state || flat.startsWith(`${state}.`)
    })
  /** Waits until the session has ended, in whichever final state. */
  const finished = () => waitForSnapshot(actor, "a final state", (snapshot) => snapshot.hasTag("final"))
  const context = () => actor.getSnapshot().context
  const watcher = () => {
    const live = watchers.filter((w) => !w.stopped)
    expect(live).toHaveLength(1)
    return live[0]!
  }
  const signal = (over: Partial<AgentSignal>): SessionEvent => ({
    type: "AGENT.SIGNAL",
    signal: { attemptId: context().attemptId, status: "done", summary: "finished", source: "signal", at: clock.now(), ...over }
  })
  /** Admits the bead and waits until it reaches `then` (by default `running`). */
  const admit = async (then = "running") => {
    actor.send({ type: "ADMIT", at: clock.now() })
    await until(then)
  }
  /** Moves the simulated clock; the delays it fires are processed before this returns. */
  const advance = (ms: number) => clock.increment(ms)
  return { actor, machine, clock, states, calls, watchers, until, finished, state, context, watcher, signal, admit, advance }
}

describe("agentSession machine (simulated clock)", () => {
  it("succeeds on the agent's signal, through every lifecycle state, keeping the evidence", async () => {
    const h = harness()
    await h.admit()
    expect(h.state()).toBe("running.working")
    h.watcher().sendBack(h.signal({ summary: "wrote hello.txt" }))
    await h.finished()
    expect(h.state()).toBe("done")
    expect(h.states).toEqual([
      "queued",
      "preflight",
      "launching",
      "running.working",
      "recording",
      "verifying",
      "cleaning",
      "notifying",
      "remembering",
      "done"
    ])
    const c = h.context()
    expect(c.outcome).toBe("done")
    expect(c.claim).toMatchObject({ kind: "done", source: "signal", detail: { summary: "wrote hello.txt" } })
    expect(c.finalMessage).toBe("wrote hello.txt")
    expect(c.verification?.overall).toBe("pass")
    expect(c.capture?.outputSummary).toBe("last screen")
    expect(h.watchers[0]!.stopped).toBe(true)
    expect(h.calls).toEqual(["preflight#1", "launch#1", "capture", "verify#1", "clean", "notify", "remember"])
  })

  it.each([
    ["status file", { type: "AGENT.SIGNAL", signal: { attemptId: null, status: "done", summary: "ok", source: "status-file", at: 1_000_500 } }, "status-file"],
    ["output marker", { type: "AGENT.MARKER", at: 1_000_500, line: "WARDEN_DONE", status: "done" }, "marker"],
    ["idle prompt", { type: "AGENT.IDLE", at: 1_000_500, screen: ["demo>"] }, "idle-prompt"],
    ["process exit 0", { type: "AGENT.EXITED", at: 1_000_500, exitCode: 0, lost: false }, "exit"]
  ] as const)("completes from the %s", async (_name, event, source) => {
    const h = harness()
    await h.admit()
    h.advance(500)
    h.watcher().sendBack(event as SessionEvent)
    await h.finished()
    expect(h.state()).toBe("done")
    expect(h.context().claim).toMatchObject({ kind: "done", source, at: 1_000_500 })
  })

  it("an exit 0 does not count as done when the profile does not list exit as a completion source", async () => {
    const h = harness({ policy: policy({ sources: ["signal", "idle-prompt"] }, { maxAttempts: 1 }) })
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 0, lost: false })
    await h.finished()
    expect(h.state()).toBe("failed")
    expect(h.context().failureReason).toBe("agent-exited")
  })

  it("a failed preflight names the failed check and is not retried by default", async () => {
    const h = harness({ preflightOk: () => false })
    await h.admit("failed")
    expect(h.state()).toBe("failed")
    expect(h.context().failureReason).toBe("preflight-failed")
    expect(h.context().claim?.detail.reason).toContain("repo-exists: /repo is not a directory")
    expect(h.calls).not.toContain("launch#1")
    expect(h.calls).not.toContain("verify#1")
  })

  it("fails, backs off exponentially, retries from preflight with a new attempt id, then succeeds", async () => {
    const h = harness()
    await h.admit()
    const firstId = h.context().attemptId
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    expect(h.context().willRetry).toBe(true)
    expect(h.context().backoffUntil).toBe(h.clock.now() + 1_000)
    h.advance(999)
    expect(h.state()).toBe("backoff")
    h.advance(1)
    // Back through the queue: the supervisor (here the test) admits the retry.
    expect(h.state()).toBe("queued")
    await h.admit()
    expect(h.state()).toBe("running.working")
    expect(h.context().attempt).toBe(2)
    expect(h.context().attemptId).not.toBe(firstId)
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until("backoff")
    // The second backoff doubles.
    expect(h.context().backoffUntil).toBe(h.clock.now() + 2_000)
    h.advance(2_000)
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.finished()
    expect(h.state()).toBe("done")
    expect(h.context().attempts.map((a) => [a.attempt, a.outcome, a.failureReason, a.exitCode])).toEqual([
      [1, "failed", "agent-exited", 1],
      [2, "failed", "agent-exited", 1]
    ])
  })

  it("stops retrying when the attempts are exhausted", async () => {
    const h = harness({ policy: policy({}, { maxAttempts: 2 }) })
    await h.admit()
    h.watcher().sendBack(h.signal({ status: "failed", summary: "tests do not compile" }))
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    h.advance(1_000)
    await h.admit()
    h.watcher().sendBack(h.signal({ status: "failed", summary: "still broken" }))
    await h.finished()
    expect(h.state()).toBe("failed")
    expect(h.context().willRetry).toBe(false)
    expect(h.context().failureReason).toBe("agent-failed")
    expect(h.context().claim?.detail.summary).toBe("still broken")
  })

  it("times out at the absolute deadline, capturing the screen before cleaning", async () => {
    const h = harness({ policy: policy({ timeoutMs: 30_000, stallMs: 100_000 }, { maxAttempts: 1 }) })
    await h.admit()
    const deadline = h.context().deadlineAt!
    expect(deadline).toBe(1_000_000 + 30_000)
    h.advance(29_999)
    expect(h.state()).toBe("running.working")
    h.advance(1)
    await h.finished()
    expect(h.state()).toBe("timeout")
    expect(h.context().claim).toMatchObject({ kind: "timeout", source: "deadline", at: deadline })
    expect(h.calls.indexOf("capture")).toBeLessThan(h.calls.indexOf("clean"))
    expect(h.calls).not.toContain("verify#1")
    expect(h.context().capture?.outputSummary).toBe("last screen")
    // The decision keeps the screen lines it was made on.
    expect(h.context().claim?.detail.screen).toEqual(["last screen"])
    expect(h.context().evidence.find((d) => d.kind === "timeout")?.detail.screen).toEqual(["last screen"])
  })

  it("a timeout is retried when the policy retries timeouts", async () => {
    const h = harness({ policy: policy({ timeoutMs: 5_000 }, { maxAttempts: 2 }) })
    await h.admit()
    h.advance(5_000)
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    expect(h.context().failureReason).toBe("timeout")
  })

  it("is stalled after the stall time without output, and working again when output comes", async () => {
    const h = harness({ policy: policy({ stallMs: 10_000 }) })
    await h.admit()
    h.advance(6_000)
    h.watcher().sendBack({ type: "AGENT.OUTPUT", at: h.clock.now() })
    h.advance(9_999)
    expect(h.state()).toBe("running.working")
    h.advance(1)
    expect(h.state()).toBe("running.stalled")
    const stall = h.context().evidence.find((d) => d.kind === "stalled")
    expect(stall).toMatchObject({ source: "stall-timer", at: 1_000_000 + 16_000 })
    h.watcher().sendBack({ type: "AGENT.OUTPUT", at: h.clock.now() })
    expect(h.state()).toBe("running.working")
    expect(h.context().evidence.map((d) => d.kind)).toEqual(["stalled", "resumed"])
  })

  it("a dialog is waiting-input, not a stall and not done; answering it resumes work; the deadline keeps running", async () => {
    const h = harness({ policy: policy({ stallMs: 5_000, timeoutMs: 60_000 }, { maxAttempts: 1 }) })
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.DIALOG", at: h.clock.now(), text: "Overwrite? [y/n]", screen: ["Overwrite? [y/n]"] })
    expect(h.state()).toBe("running.waitingInput")
    h.advance(20_000)
    expect(h.state()).toBe("running.waitingInput")
    // Output while the dialog stays on screen (a cursor blink) does not end the wait.
    h.watcher().sendBack({ type: "AGENT.OUTPUT", at: h.clock.now() })
    expect(h.state()).toBe("running.waitingInput")
    h.watcher().sendBack({ type: "AGENT.DIALOG_CLEARED", at: h.clock.now() })
    expect(h.state()).toBe("running.working")
    h.watcher().sendBack({ type: "AGENT.DIALOG", at: h.clock.now(), text: "Again? [y/n]", screen: [] })
    h.advance(40_000)
    await h.finished()
    expect(h.state()).toBe("timeout")
    expect(h.context().evidence.filter((d) => d.kind === "waiting-input").map((d) => d.detail.line)).toEqual([
      "Overwrite? [y/n]",
      "Again? [y/n]"
    ])
  })

  it("a hook's `waiting` (a question) is waiting-input until the operator answers, then the next turn's done ends it", async () => {
    const h = harness()
    await h.admit()
    h.watcher().sendBack(h.signal({ status: "waiting", summary: "Which database?", source: "hook" }))
    expect(h.state()).toBe("running.waitingInput")
    // A TUI redrawing itself is not an answer.
    h.watcher().sendBack({ type: "AGENT.OUTPUT", at: h.clock.now() })
    expect(h.state()).toBe("running.waitingInput")
    h.watcher().sendBack({ type: "AGENT.INPUT", at: h.clock.now(), text: "postgres" })
    expect(h.state()).toBe("running.working")
    h.watcher().sendBack(h.signal({ status: "done", summary: "migrated to postgres", source: "hook" }))
    await h.finished()
    expect(h.state()).toBe("done")
    expect(h.context().evidence.map((d) => `${d.kind}/${d.source}`)).toEqual([
      "waiting-input/hook",
      "resumed/operator",
      "done/hook",
      "done/verification"
    ])
  })

  it("keeps the usage, cost and final message the agent's output reported", async () => {
    const h = harness()
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.REPORT", at: h.clock.now(), report: { finalMessage: "wrote it", usage: { input_tokens: 120 }, costUsd: 0.01 } })
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 0, lost: false })
    await h.finished()
    expect(h.state()).toBe("done")
    expect(h.context()).toMatchObject({ finalMessage: "wrote it", usage: { input_tokens: 120 }, costUsd: 0.01 })
  })

  it.each(["preflight", "launching", "running", "backoff", "queued"])("cancels from %s", async (where) => {
    const h = harness(where === "launching" ? { gate: { launch: new Promise(() => undefined) } } : {})
    if (where === "preflight") {
      // CANCEL arrives before the preflight's promise resolves.
      h.actor.send({ type: "ADMIT", at: h.clock.now() })
      expect(h.state()).toBe(where)
    } else if (where === "launching") {
      await h.admit("launching")
      expect(h.state()).toBe(where)
    } else if (where === "running") await h.admit()
    else if (where === "backoff") {
      await h.admit()
      h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
      await h.until("backoff")
      expect(h.state()).toBe("backoff")
    }
    h.actor.send({ type: "CANCEL", at: h.clock.now(), reason: "operator said so" })
    await h.finished()
    expect(h.state()).toBe("cancelled")
    expect(h.context().outcome).toBe("cancelled")
    if (where === "running") {
      expect(h.calls).toContain("clean")
      expect(h.context().claim).toMatchObject({ kind: "cancelled", source: "operator", detail: { reason: "operator said so" } })
    }
  })

  it("cancel while recording a claimed done skips verification and ends cancelled", async () => {
    let release = () => undefined as void
    const h = harness({ gate: { capture: new Promise<void>((resolve) => (release = resolve)) } })
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.until("recording")
    expect(h.state()).toBe("recording")
    h.actor.send({ type: "CANCEL", at: h.clock.now() })
    release()
    await h.finished()
    expect(h.state()).toBe("cancelled")
    expect(h.calls).not.toContain("verify#1")
    expect(h.calls).toContain("clean")
  })

  it.each(["notifying", "remembering"] as const)("cancel during %s stops the retry that would have come", async (where) => {
    // Hold the attempt right where it is being reported, so the cancel lands there every time.
    let release = () => undefined as void
    const held = new Promise<void>((resolve) => (release = resolve))
    const h = harness({ gate: where === "notifying" ? { notify: held } : { remember: held } })
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until(where)
    expect(h.context().willRetry).toBe(true)
    h.actor.send({ type: "CANCEL", at: h.clock.now() })
    release()
    await h.finished()
    expect(h.state()).toBe("cancelled")
    expect(h.context().willRetry).toBe(false)
  })

  it("cancel during verification stops it and ends cancelled", async () => {
    const h = harness({ gate: { verify: new Promise(() => undefined) } })
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.until("verifying")
    expect(h.state()).toBe("verifying")
    h.actor.send({ type: "CANCEL", at: h.clock.now() })
    await h.finished()
    expect(h.state()).toBe("cancelled")
  })

  it("fails verification: a claimed done that changed nothing is failed, not done, and not retried by default", async () => {
    const h = harness({ verify: () => "fail" })
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.finished()
    expect(h.state()).toBe("failed")
    expect(h.context().failureReason).toBe("verification-failed")
    expect(h.context().evidence.map((d) => `${d.kind}/${d.source}`)).toEqual(["done/signal", "failed/verification"])
  })

  it("retries a failed verification when the policy lists it", async () => {
    const h = harness({
      verify: (attempt) => (attempt === 1 ? "fail" : "pass"),
      policy: policy({}, { retryOn: ["verification-failed"] })
    })
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    h.advance(1_000)
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.finished()
    expect(h.state()).toBe("done")
  })

  it("ignores a stale signal from an earlier attempt, and an unattributed one older than the attempt", async () => {
    const h = harness()
    await h.admit()
    const firstId = h.context().attemptId!
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 2, lost: false })
    await h.until("backoff")
    h.advance(1_000)
    await h.admit()
    expect(h.context().attempt).toBe(2)
    const startedAt = h.context().attemptStartedAt!
    // The first attempt's "done" arrives late: it must not end the second attempt.
    h.watcher().sendBack(h.signal({ attemptId: firstId, summary: "stale" }))
    h.watcher().sendBack(h.signal({ attemptId: null, source: "status-file", at: startedAt - 1 }))
    expect(h.state()).toBe("running.working")
    expect(h.context().ignored.map((i) => i.reason)).toEqual([
      `for attempt ${firstId}, not the current ${h.context().attemptId}`,
      "no attempt id, and written before this attempt started"
    ])
    h.watcher().sendBack(h.signal({}))
    await h.finished()
    expect(h.state()).toBe("done")
  })

  it("a signal while no attempt runs (during the backoff) is ignored and logged", async () => {
    const h = harness()
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    h.actor.send(h.signal({ summary: "late" }))
    expect(h.state()).toBe("backoff")
    expect(h.context().ignored.map((i) => i.reason)).toEqual(["no attempt is running"])
  })

  it("a session that disappears is failed with session-lost and retried", async () => {
    const h = harness()
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: null, lost: true })
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    expect(h.context().failureReason).toBe("session-lost")
  })

  it("a launch failure is recorded and retried", async () => {
    const h = harness({ launchOk: (attempt) => attempt > 1 })
    await h.admit("backoff")
    expect(h.state()).toBe("backoff")
    expect(h.context().attempts).toHaveLength(1)
    expect(h.context().attempts[0]!.failureReason).toBe("launch-failed")
    h.advance(1_000)
    await h.admit()
    expect(h.state()).toBe("running.working")
  })

  it("restored from a persisted snapshot (JSON), RESUME re-arms the deadline at its absolute time", async () => {
    const h = harness({ policy: policy({ timeoutMs: 30_000, stallMs: 100_000 }, { maxAttempts: 1 }) })
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.DIALOG", at: h.clock.now(), text: "Proceed? [y/n]", screen: [] })
    h.advance(10_000)
    const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()))
    h.actor.stop()
    // The daemon was away for 5 s; a new actor takes over from the snapshot on the same clock.
    h.clock.increment(5_000)
    const restored = createActor(h.machine, { clock: h.clock, snapshot: persisted, input: { bead: "bd-1", policy: policy() } })
    restored.start()
    restored.send({ type: "RESUME", at: h.clock.now() })
    expect(flattenState(restored.getSnapshot().value)).toBe("running.waitingInput")
    h.clock.increment(14_999)
    expect(flattenState(restored.getSnapshot().value)).toBe("running.waitingInput")
    h.clock.increment(1)
    await waitForSnapshot(restored, "a final state", (snapshot) => snapshot.hasTag("final"))
    expect(restored.getSnapshot().value).toBe("timeout")
    expect(restored.getSnapshot().context.claim).toMatchObject({ source: "deadline", at: 1_000_000 + 30_000 })
  })

  it("a restored backoff waits only for what is left of it", async () => {
    const h = harness()
    await h.admit()
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until("backoff")
    expect(h.state()).toBe("backoff")
    const until = h.context().backoffUntil!
    const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()))
    h.actor.stop()
    h.clock.increment(600)
    const restored = createActor(h.machine, { clock: h.clock, snapshot: persisted, input: { bead: "bd-1", policy: policy() } })
    restored.start()
    restored.send({ type: "RESUME", at: h.clock.now() })
    h.clock.increment(until - h.clock.now() - 1)
    expect(restored.getSnapshot().value).toBe("backoff")
    h.clock.increment(1)
    expect(restored.getSnapshot().value).toBe("queued")
  })

  it("pure transitions: the machine computes the next state without running anything", () => {
    const [initial] = initialTransition(agentSessionMachine, { bead: "bd-1", policy: policy() })
    expect(initial.value).toBe("queued")
    const [next, actions] = transition(agentSessionMachine, initial, { type: "ADMIT", at: 5 })
    expect(next.value).toBe("preflight")
    expect(next.context.attempt).toBe(1)
    expect(actions.map((a) => a.type)).toContain("xstate.spawnChild")
  })

  it("every actor the machine names is implemented by the seam", () => {
    const declared = Object.keys(agentSessionMachine.implementations.actors).sort()
    const provided = Object.keys(sessionImplementations({} as never, {} as never, { records: () => ({}) as never, log: () => undefined }).actors).sort()
    expect(provided).toEqual(declared)
    expect(declared).toEqual(["capture", "clean", "launch", "notify", "preflight", "remember", "verify", "watchAgent"])
  })

  it("an unprovided actor fails loudly", async () => {
    const actor = createActor(agentSessionMachine, { input: { bead: "bd-1", policy: policy({}, { maxAttempts: 1 }) } })
    actor.start()
    actor.send({ type: "ADMIT", at: 0 })
    const snapshot = await waitForSnapshot(actor, "a final state", (s) => s.hasTag("final"))
    expect(snapshot.value).toBe("failed")
    expect(snapshot.context.claim?.detail.reason).toMatch(/actor "preflight" is not provided/)
    expect(snapshot.context.failureReason).toBe("preflight-failed")
    expect(snapshot.context.willRetry).toBe(false)
  })
})

describe("agentSession's supervisor slot (tag holdsSlot)", () => {
  /** The daemon's rule: a session holds its slot from its admission (leaving `queued`) until it enters `cleaning`. */
  const holdsSlot = (state: string) => ["preflight", "launching", "running", "recording", "verifying"].includes(state.split(".")[0]!)

  it("is held exactly from admission until cleaning, in every state a session passes through (simulated clock)", async () => {
    const h = harness()
    const seen: Array<[string, boolean]> = []
    const note = (snapshot: ReturnType<typeof h.actor.getSnapshot>) => {
      const entry: [string, boolean] = [flattenState(snapshot.value), snapshot.hasTag("holdsSlot")]
      const last = seen[seen.length - 1]
      if (last === undefined || last[0] !== entry[0] || last[1] !== entry[1]) seen.push(entry)
    }
    note(h.actor.getSnapshot())
    h.actor.subscribe(note)
    await h.admit()
    h.advance(10_000)
    await h.until("running.stalled")
    h.watcher().sendBack({ type: "AGENT.DIALOG", at: h.clock.now(), text: "Allow? (y/n)", screen: ["Allow? (y/n)"] })
    await h.until("running.waitingInput")
    h.watcher().sendBack({ type: "AGENT.DIALOG_CLEARED", at: h.clock.now() })
    await h.until("running.working")
    h.watcher().sendBack({ type: "AGENT.EXITED", at: h.clock.now(), exitCode: 1, lost: false })
    await h.until("backoff")
    h.advance(1_000)
    await h.until("queued")
    await h.admit()
    h.watcher().sendBack(h.signal({}))
    await h.finished()
    expect(seen.map(([state]) => state)).toEqual([
      "queued",
      "preflight",
      "launching",
      "running.working",
      "running.stalled",
      "running.waitingInput",
      "running.working",
      "recording",
      "cleaning",
      "notifying",
      "remembering",
      "backoff",
      "queued",
      "preflight",
      "launching",
      "running.working",
      "recording",
      "verifying",
      "cleaning",
      "notifying",
      "remembering",
      "done"
    ])
    expect(seen.filter(([state, tagged]) => tagged !== holdsSlot(state))).toEqual([])
  })

  it("is a tag of exactly the states that hold a slot, sub-states included (settling and the final states too)", () => {
    const wrong: string[] = []
    const visit = (node: (typeof agentSessionMachine)["root"], inherited: boolean, name: string) => {
      const tagged = inherited || node.tags.includes("holdsSlot")
      if (name !== "" && tagged !== holdsSlot(name)) wrong.push(`${name}: ${tagged ? "tagged" : "not tagged"}`)
      for (const [key, child] of Object.entries(node.states)) visit(child, tagged, name === "" ? key : `${name}.${key}`)
    }
    visit(agentSessionMachine.root, false, "")
    expect(wrong).toEqual([])
    expect(Object.keys(agentSessionMachine.root.states)).toContain("settling")
  })
})
