import { describe, expect, it } from "vitest"
import { SimulatedClock, createActor, fromCallback, fromPromise, type StateValue } from "xstate"
import {
  serviceMachine,
  type LaunchInput,
  type LaunchOutput,
  type ProbeInput,
  type ServiceAlert,
  type ServiceEvent,
  type ServicePolicy,
  type TerminateInput,
  type WatchInput
} from "../machines/service.machine.js"
import { waitForSnapshot } from "./support/waitForSnapshot.js"

const policy = (over: Partial<ServicePolicy> = {}): ServicePolicy => ({
  mode: "process",
  backoffInitialMs: 1_000,
  backoffFactor: 2,
  backoffMaxMs: 60_000,
  maxRestarts: 5,
  withinSeconds: 60,
  healthyResetMs: 30_000,
  preventRestartExitCodes: [],
  hasHealthCheck: false,
  ...over
})

const flatten = (value: StateValue): string =>
  typeof value === "string"
    ? value
    : Object.entries(value)
        .map(([key, child]) => (child === undefined ? key : `${key}.${flatten(child as StateValue)}`))
        .join(",")

/** Lets promise actors settle (they resolve on microtasks; real time, not the simulated clock). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5))

interface HarnessOptions {
  readonly policy?: ServicePolicy
  /** Whether launch number `attempt` succeeds (default: yes); "throw" makes the actor reject. */
  readonly launch?: (attempt: number) => boolean | "throw"
  /** Holds `terminate` until the test resolves it. */
  readonly terminateGate?: () => Promise<void>
}

interface Live<I> {
  readonly input: I
  readonly sendBack: (event: ServiceEvent) => void
  stopped: boolean
}

/** The machine with in-memory actors on a simulated clock; each actor call is recorded in order in `calls`. */
const harness = (options: HarnessOptions = {}) => {
  const clock = new SimulatedClock()
  clock.set(1_000_000)
  const calls: string[] = []
  const watchers: Array<Live<WatchInput>> = []
  const probes: Array<Live<ProbeInput>> = []
  const terminated: TerminateInput[] = []
  const machine = serviceMachine.provide({
    actors: {
      launch: fromPromise(async ({ input }: { input: LaunchInput }) => {
        calls.push(`launch#${input.attempt}`)
        const result = options.launch?.(input.attempt) ?? true
        if (result === "throw") throw new Error("spawn EACCES")
        return result
          ? { ok: true as const, pid: 100 + input.attempt, at: clock.now() }
          : { ok: false as const, error: "no such program", at: clock.now() }
      }),
      watch: fromCallback<ServiceEvent, WatchInput>(({ input, sendBack }) => {
        const live = { input, sendBack, stopped: false }
        watchers.push(live)
        return () => {
          live.stopped = true
        }
      }),
      probe: fromCallback<ServiceEvent, ProbeInput>(({ input, sendBack }) => {
        const live = { input, sendBack, stopped: false }
        probes.push(live)
        return () => {
          live.stopped = true
        }
      }),
      terminate: fromPromise(async ({ input }: { input: TerminateInput }) => {
        calls.push(`terminate:${input.pid}`)
        terminated.push(input)
        await options.terminateGate?.()
        calls.push(`terminated:${input.pid}`)
        return { at: clock.now() }
      })
    }
  })
  const actor = createActor(machine, { clock, input: { name: "gateway", policy: options.policy ?? policy(), at: clock.now() } })
  const alerts: ServiceAlert[] = []
  actor.on("alert", (alert) => alerts.push(alert))
  const states: string[] = []
  actor.subscribe((snapshot) => {
    const state = flatten(snapshot.value)
    if (states[states.length - 1] !== state) states.push(state)
  })
  actor.start()
  const state = () => flatten(actor.getSnapshot().value)
  const context = () => actor.getSnapshot().context
  const until = (wanted: string) =>
    waitForSnapshot(actor, `state ${wanted}`, (snapshot) => {
      const flat = flatten(snapshot.value)
      return flat === wanted || flat.startsWith(`${wanted}.`)
    })
  const only = <I>(list: Array<Live<I>>, what: string): Live<I> => {
    const live = list.filter((l) => !l.stopped)
    if (live.length !== 1) throw new Error(`expected one live ${what}, found ${live.length}`)
    return live[0]!
  }
  const watcher = () => only(watchers, "watch")
  const probe = () => only(probes, "probe")
  /** The running process exits (through its watch). */
  const crash = (code: number | null = 1) => watcher().sendBack({ type: "EXITED", code, signal: null, at: clock.now() })
  const health = (ok: boolean) => probe().sendBack({ type: "HEALTH", ok, detail: ok ? "200 OK" : "503 from /health", at: clock.now() })
  const send = (type: "START" | "STOP" | "RESTART" | "RESUME") => actor.send({ type, at: clock.now() })
  const advance = (ms: number) => clock.increment(ms)
  return { actor, clock, calls, watchers, probes, terminated, alerts, states, state, context, until, watcher, probe, crash, health, send, advance }
}

type Harness = ReturnType<typeof harness>

/** Crashes the running service and checks that nothing is launched before `backoffMs` has passed, and that it runs again right then. */
const crashAndExpectBackoff = async (h: Harness, backoffMs: number) => {
  const launches = h.calls.filter((c) => c.startsWith("launch")).length
  h.crash()
  expect(h.state()).toBe("backingOff")
  h.advance(backoffMs - 1)
  await settle()
  expect(h.state()).toBe("backingOff")
  expect(h.calls.filter((c) => c.startsWith("launch"))).toHaveLength(launches)
  h.advance(1)
  await h.until("running")
  expect(h.calls.filter((c) => c.startsWith("launch"))).toHaveLength(launches + 1)
}

describe("service machine (simulated clock)", () => {
  it("starts: launches attempt 1, watches its pid, and runs healthy (tagged up)", async () => {
    const h = harness()
    await h.until("running")
    expect(h.state()).toBe("running.healthy")
    expect(h.calls).toEqual(["launch#1"])
    expect(h.watcher().input).toEqual({ name: "gateway", pid: 101 })
    expect(h.actor.getSnapshot().hasTag("up")).toBe(true)
    expect(h.context()).toMatchObject({ pid: 101, attempt: 1, restarts: 0, since: 1_000_000 })
    // No health check configured: no probe runs.
    expect(h.probes).toHaveLength(0)
    expect(h.states).toEqual(["starting", "running.healthy"])
  })

  it("after a crash, backs off for exactly the backoff, then restarts and runs", async () => {
    const h = harness()
    await h.until("running")
    h.advance(5_000)
    await crashAndExpectBackoff(h, 1_000)
    expect(h.state()).toBe("running.healthy")
    expect(h.states).toEqual(["starting", "running.healthy", "backingOff", "restarting.launching", "running.healthy"])
    // The process exited on its own: nothing to terminate before the relaunch.
    expect(h.calls).toEqual(["launch#1", "launch#2"])
    expect(h.context()).toMatchObject({ pid: 102, restarts: 1, lastExit: { code: 1, signal: null, at: 1_005_000 } })
    expect(h.watchers.filter((w) => !w.stopped).map((w) => w.input.pid)).toEqual([102])
    expect(h.actor.getSnapshot().hasTag("up")).toBe(true)
  })

  it("doubles the backoff on each consecutive crash, up to its cap", async () => {
    const h = harness({ policy: policy({ backoffMaxMs: 5_000, maxRestarts: 100 }) })
    await h.until("running")
    for (const backoff of [1_000, 2_000, 4_000, 5_000, 5_000]) await crashAndExpectBackoff(h, backoff)
    expect(h.context().restarts).toBe(5)
  })

  it("resets the backoff after a run that stays healthy for healthyResetMs, and not before", async () => {
    const h = harness({ policy: policy({ healthyResetMs: 10_000, maxRestarts: 100 }) })
    await h.until("running")
    await crashAndExpectBackoff(h, 1_000)
    await crashAndExpectBackoff(h, 2_000)
    // Healthy for 1 ms less than healthyResetMs: the next backoff still doubles.
    h.advance(9_999)
    await crashAndExpectBackoff(h, 4_000)
    // Healthy for healthyResetMs: the next backoff starts again from the initial one.
    h.advance(10_000)
    await crashAndExpectBackoff(h, 1_000)
    await crashAndExpectBackoff(h, 2_000)
  })

  it("fails with exactly one alert when restarts exceed maxRestarts within withinSeconds", async () => {
    const h = harness({ policy: policy({ maxRestarts: 2, withinSeconds: 60 }) })
    await h.until("running")
    await crashAndExpectBackoff(h, 1_000)
    await crashAndExpectBackoff(h, 2_000)
    expect(h.alerts).toEqual([])
    h.crash(3)
    expect(h.state()).toBe("failed")
    expect(h.alerts).toEqual([{ type: "alert", name: "gateway", reason: "more than 2 restarts within 60 s (last: exit code 3)" }])
    // Given up: nothing is launched again, and no further alert comes, however long it waits.
    h.advance(3_600_000)
    await settle()
    expect(h.state()).toBe("failed")
    expect(h.calls.filter((c) => c.startsWith("launch"))).toHaveLength(3)
    expect(h.alerts).toHaveLength(1)
    expect(h.actor.getSnapshot().hasTag("up")).toBe(false)
    expect(h.context().failureReason).toBe("more than 2 restarts within 60 s (last: exit code 3)")
  })

  it("does not fail when the restarts are spread wider than withinSeconds", async () => {
    const h = harness({ policy: policy({ maxRestarts: 2, withinSeconds: 10, healthyResetMs: 1_000_000 }) })
    await h.until("running")
    await crashAndExpectBackoff(h, 1_000)
    h.advance(10_000)
    await crashAndExpectBackoff(h, 2_000)
    h.advance(10_000)
    // The first restart is out of the window by now: this is the second within it, not the third.
    await crashAndExpectBackoff(h, 4_000)
    expect(h.alerts).toEqual([])
    expect(h.context().restarts).toBe(3)
  })

  it("goes straight to failed, with one alert, on an exit code in preventRestartExitCodes", async () => {
    const h = harness({ policy: policy({ preventRestartExitCodes: [78] }) })
    await h.until("running")
    h.crash(78)
    expect(h.state()).toBe("failed")
    expect(h.alerts).toEqual([
      { type: "alert", name: "gateway", reason: "exited with code 78, which preventRestartExitCodes says not to restart" }
    ])
    h.advance(600_000)
    await settle()
    expect(h.calls).toEqual(["launch#1"])
    expect(h.alerts).toHaveLength(1)
    expect(h.context()).toMatchObject({ restarts: 0, pid: null, lastExit: { code: 78 } })
  })

  it("restarts after 3 failing probes in a row: terminate resolves before launch is called again", async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const h = harness({ policy: policy({ hasHealthCheck: true }), terminateGate: () => gate })
    await h.until("running")
    expect(h.probe().input).toEqual({ name: "gateway" })
    h.health(false)
    h.health(false)
    expect(h.state()).toBe("running.unhealthy")
    // A pass in between clears the count: two more failures are not yet three in a row.
    h.health(true)
    expect(h.state()).toBe("running.healthy")
    h.health(false)
    h.health(false)
    expect(h.state()).toBe("running.unhealthy")
    expect(h.calls).toEqual(["launch#1"])
    h.health(false)
    expect(h.state()).toBe("restarting.terminating")
    await settle()
    // Held in terminate: the process is not confirmed gone, so no launch yet.
    expect(h.calls).toEqual(["launch#1", "terminate:101"])
    expect(h.probes.every((p) => p.stopped)).toBe(true)
    release()
    await h.until("running")
    expect(h.calls).toEqual(["launch#1", "terminate:101", "terminated:101", "launch#2"])
    // Running again, but not called healthy until its probe says so.
    expect(h.state()).toBe("running.checking")
    expect(h.context()).toMatchObject({ pid: 102, restarts: 1, recentRestarts: [1_000_000] })
    expect(h.probe().input).toEqual({ name: "gateway" })
    h.health(true)
    expect(h.state()).toBe("running.healthy")
  })

  it("is running.checking, not healthy, from its launch until its first probe passes; a first probe that fails is unhealthy; without a probe it is healthy at once", async () => {
    const probed = harness({ policy: policy({ hasHealthCheck: true }) })
    await probed.until("running")
    expect(probed.state()).toBe("running.checking")
    probed.health(true)
    expect(probed.state()).toBe("running.healthy")
    const failing = harness({ policy: policy({ hasHealthCheck: true }) })
    await failing.until("running")
    failing.health(false)
    expect(failing.state()).toBe("running.unhealthy")
    const unprobed = harness({ policy: policy({ hasHealthCheck: false }) })
    await unprobed.until("running")
    expect(unprobed.state()).toBe("running.healthy")
  })

  it("terminates a wedged service for good when restarting it would exceed the limit", async () => {
    const h = harness({ policy: policy({ hasHealthCheck: true, maxRestarts: 0, unhealthyAfter: 1 }) })
    await h.until("running")
    h.health(false)
    await h.until("failed")
    expect(h.calls).toEqual(["launch#1", "terminate:101", "terminated:101"])
    expect(h.alerts).toEqual([{ type: "alert", name: "gateway", reason: "more than 0 restarts within 60 s (last: unhealthy: 503 from /health)" }])
  })

  it("stops on STOP (terminate called with the pid) and starts again on START", async () => {
    const h = harness()
    await h.until("running")
    h.send("STOP")
    await h.until("stopped")
    expect(h.states).toEqual(["starting", "running.healthy", "stopping", "stopped"])
    expect(h.terminated).toEqual([{ name: "gateway", pid: 101 }])
    expect(h.watchers.every((w) => w.stopped)).toBe(true)
    h.advance(600_000)
    await settle()
    expect(h.calls).toEqual(["launch#1", "terminate:101", "terminated:101"])
    h.send("START")
    await h.until("running")
    expect(h.calls).toEqual(["launch#1", "terminate:101", "terminated:101", "launch#2"])
    expect(h.context()).toMatchObject({ pid: 102, attempt: 2, restarts: 0 })
  })

  it("stops from backingOff without launching again", async () => {
    const h = harness()
    await h.until("running")
    h.crash()
    h.send("STOP")
    await h.until("stopped")
    h.advance(60_000)
    await settle()
    expect(h.calls).toEqual(["launch#1", "terminate:null", "terminated:null"])
  })

  it("starts again from failed on START, with the intensity window afresh", async () => {
    const h = harness({ policy: policy({ maxRestarts: 1 }) })
    await h.until("running")
    await crashAndExpectBackoff(h, 1_000)
    h.crash()
    expect(h.state()).toBe("failed")
    h.send("START")
    await h.until("running")
    expect(h.context().recentRestarts).toEqual([])
    // One restart is allowed again, and the backoff starts from the initial one.
    await crashAndExpectBackoff(h, 1_000)
    expect(h.alerts).toHaveLength(1)
  })

  it("does not count operator RESTARTs towards the limit; each terminates before it launches", async () => {
    const h = harness({ policy: policy({ maxRestarts: 1 }) })
    await h.until("running")
    for (let i = 0; i < 3; i++) {
      h.send("RESTART")
      await h.until("restarting")
      await h.until("running")
    }
    expect(h.calls).toEqual([
      "launch#1",
      "terminate:101",
      "terminated:101",
      "launch#2",
      "terminate:102",
      "terminated:102",
      "launch#3",
      "terminate:103",
      "terminated:103",
      "launch#4"
    ])
    expect(h.context()).toMatchObject({ restarts: 0, recentRestarts: [] })
    // The policy's one allowed restart is still there; the next crash goes over the limit.
    await crashAndExpectBackoff(h, 1_000)
    h.crash()
    expect(h.state()).toBe("failed")
    expect(h.alerts).toHaveLength(1)
  })

  it("counts a failed launch ({ok: false}) as a crash: backs off, restarts, and fails over the limit", async () => {
    const h = harness({ policy: policy({ maxRestarts: 1 }), launch: (attempt) => attempt >= 2 })
    await h.until("backingOff")
    expect(h.context()).toMatchObject({ restarts: 1, pid: null, lastError: "launch failed: no such program" })
    h.advance(999)
    await settle()
    expect(h.calls).toEqual(["launch#1"])
    h.advance(1)
    await h.until("running")
    expect(h.calls).toEqual(["launch#1", "launch#2"])

    const failing = harness({ policy: policy({ maxRestarts: 1 }), launch: () => false })
    await failing.until("backingOff")
    failing.advance(1_000)
    await failing.until("failed")
    expect(failing.alerts).toEqual([
      { type: "alert", name: "gateway", reason: "more than 1 restarts within 60 s (last: launch failed: no such program)" }
    ])
  })

  it("counts a launch that throws as a crash too", async () => {
    const h = harness({ launch: (attempt) => (attempt === 1 ? "throw" : true) })
    await h.until("backingOff")
    expect(h.context().lastError).toBe("launch threw: spawn EACCES")
    h.advance(1_000)
    await h.until("running")
  })

  it("re-arms the backoff from its absolute end on RESUME after a restore", async () => {
    const h = harness()
    await h.until("running")
    h.crash()
    h.advance(400)
    const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()))
    h.actor.stop()

    const clock = new SimulatedClock()
    clock.set(h.clock.now())
    const launches: number[] = []
    const machine = serviceMachine.provide({
      actors: {
        launch: fromPromise<LaunchOutput, LaunchInput>(async ({ input }) => {
          launches.push(input.attempt)
          return { ok: true as const, pid: 200, at: clock.now() }
        }),
        watch: fromCallback(() => () => {})
      }
    })
    // The input is required by the types but not read: the context comes from the snapshot.
    const restored = createActor(machine, { clock, snapshot: persisted, input: { name: "gateway", policy: policy() } })
    restored.start()
    restored.send({ type: "RESUME", at: clock.now() })
    clock.increment(599)
    await settle()
    expect(flatten(restored.getSnapshot().value)).toBe("backingOff")
    expect(launches).toEqual([])
    clock.increment(1)
    await waitForSnapshot(restored, "running", (s) => s.matches("running"))
    expect(launches).toEqual([2])
    expect(restored.getSnapshot().context.since).toBe(1_001_000)
    restored.stop()
  })

  it("fails loudly when an actor is not provided", async () => {
    const actor = createActor(serviceMachine, { input: { name: "gateway", policy: policy() } })
    actor.subscribe({ error: () => {} })
    actor.start()
    await settle()
    // The launch placeholder throws: a launch that cannot run is a crash, with the reason kept.
    expect(actor.getSnapshot().context.lastError).toBe('launch threw: service: actor "launch" is not provided; use machine.provide()')
    actor.stop()
  })
})
