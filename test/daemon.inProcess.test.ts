import { Context, Effect, Either, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { DispatchRequests, memoryDispatchRequestsLayer } from "../src/daemon/DispatchRequests.js"
import { DaemonOperations } from "../src/daemon/operations.js"
import { DaemonSettings, apiTokenLayer, quarantineLayer, workspaceLockLayer } from "../src/daemon/resources.js"
import { SnapshotStore, memorySnapshotStoreLayer } from "../src/daemon/SnapshotStore.js"
import { DaemonEventSink, Supervision, operationsLayer, supervisionLayer } from "../src/daemon/supervisionLayer.js"
import { snapshotSaverLayer } from "../src/daemon/snapshotPersistence.js"
import { WorkQueue, memoryWorkQueueLayer } from "../src/daemon/WorkQueue.js"
import { testWorld } from "./support/testLayers.js"
import { eventually } from "./support/workspace.js"

/**
 * The daemon's logic in this process, on the test layers: the same layers
 * `warden daemon` builds (lock, quarantine, token, the actor tree, the
 * operations the API calls), with in-memory terminals, processes, git,
 * records and stores. No port, no child process, no tmux: the built daemon
 * stays for the end-to-end tests.
 */
const setUp = () => {
  const { dir, repo, config, paths, terminals, records, layer: services } = testWorld("warden-inproc-", { storage: "memory" })
  // The stores outlive a daemon, as files do: one instance of each, handed to every daemon this test starts.
  const storeRuntime = ManagedRuntime.make(Layer.mergeAll(memoryWorkQueueLayer(), memorySnapshotStoreLayer(), memoryDispatchRequestsLayer()))
  const stores = Layer.mergeAll(
    Layer.succeed(WorkQueue, storeRuntime.runSync(WorkQueue)),
    Layer.succeed(SnapshotStore, storeRuntime.runSync(SnapshotStore)),
    Layer.succeed(DispatchRequests, storeRuntime.runSync(DispatchRequests))
  )
  const events: Array<{ topic: string; type: string; data: any }> = []
  const log: string[] = []

  /** Starts a daemon: its layers built in a scope of its own; `stop` closes it (the tree stops, the agents run on). */
  const start = async (concurrency: number) => {
    const scope = Effect.runSync(Scope.make())
    const layer = operationsLayer.pipe(
      Layer.provideMerge(supervisionLayer),
      Layer.provideMerge(snapshotSaverLayer),
      Layer.provideMerge(Layer.mergeAll(services, stores, Layer.succeed(DaemonEventSink, { publish: (topic, type, data) => void events.push({ topic, type, data }) }))),
      Layer.provideMerge(apiTokenLayer),
      Layer.provideMerge(quarantineLayer),
      Layer.provideMerge(workspaceLockLayer),
      Layer.provideMerge(Layer.succeed(DaemonSettings, { config, paths, concurrency, quotas: {}, log: (message) => void log.push(message) }))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    const daemon = Context.get(context, Supervision)
    const ops = Context.get(context, DaemonOperations)
    const { restored } = await daemon.restore()
    daemon.start(restored)
    const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
    return { daemon, ops, restored, run, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
  }
  const stateOf = (daemon: Awaited<ReturnType<typeof start>>["daemon"], bead: string) => daemon.sessions.get(bead)?.recorder.view().state ?? null
  /** Plays the agent: it says it is done through the API's signal operation, as `warden signal` would. */
  const finish = (d: Awaited<ReturnType<typeof start>>, bead: string) =>
    d.run(d.ops.signal(bead, "done", `${bead} finished`, d.daemon.sessions.get(bead)!.recorder.view().context.attemptId))
  const dispatchBody = (bead: string) => ({ bead, repo, agent: "demo", priority: 2, prompt: "SCENARIO: succeed" })
  return { dir, config, paths, terminals, records, events, log, start, stateOf, finish, dispatchBody, dispose: () => storeRuntime.dispose() }
}

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const step of cleanup.reverse()) await step()
  cleanup = []
})

describe("the daemon in-process on the test layers", () => {
  it("queues two beads behind one slot, runs each to done through its operations, and reports it all through its event sink", async () => {
    const t = setUp()
    cleanup.push(t.dispose)
    const d = await t.start(1)
    cleanup.push(d.stop)
    const accepted = await d.run(d.ops.dispatch(t.dispatchBody("bd-one")))
    expect(accepted).toMatchObject({ bead: "bd-one", draining: false })
    await d.run(d.ops.dispatch(t.dispatchBody("bd-two")))
    await eventually(() => t.stateOf(d.daemon, "bd-one") === "running.working", 10_000, "bd-one running")
    expect(t.stateOf(d.daemon, "bd-two")).toBe("queued")
    // A second dispatch of a live bead is refused as a value the API maps to 409.
    const again = await Effect.runPromise(Effect.either(d.ops.dispatch(t.dispatchBody("bd-one"))))
    expect(Either.isLeft(again) && again.left._tag).toBe("BeadBusy")

    await t.finish(d, "bd-one")
    await eventually(() => t.records.runs.get("bd-one")?.lifecycle_state === "done", 10_000, "bd-one done")
    await eventually(() => t.stateOf(d.daemon, "bd-two") === "running.working", 10_000, "bd-two admitted into the freed slot")
    await t.finish(d, "bd-two")
    await eventually(() => t.records.runs.get("bd-two")?.lifecycle_state === "done", 10_000, "bd-two done")

    const types = t.events.map((e) => `${e.topic}:${e.type}`)
    for (const type of ["queue:queue.enqueued", "queue:queue.admitted", "sessions:session.state", "records:records.written", "machines:machine.state", "machines:machine.event", "daemon:daemon.ready"]) {
      expect(types).toContain(type)
    }
    const admitted = t.events.filter((e) => e.type === "queue.admitted").map((e) => e.data.bead)
    expect(admitted).toEqual(["bd-one", "bd-two"])
    // Retry sends the same request again, from the kept (and decoded) request.
    const retried = await d.run(d.ops.retry("bd-one"))
    expect(retried.bead).toBe("bd-one")
    await eventually(() => t.stateOf(d.daemon, "bd-one") === "running.working", 10_000, "bd-one running again")
    expect(t.records.runs.get("bd-one")?.attempt).toBe(1)
  })

  it("a stopped daemon leaves its running session to the next one, which takes it over from its snapshot and sees it finish", async () => {
    const t = setUp()
    cleanup.push(t.dispose)
    const first = await t.start(2)
    await first.run(first.ops.dispatch(t.dispatchBody("bd-over")))
    await eventually(() => t.stateOf(first.daemon, "bd-over") === "running.working", 10_000, "bd-over running")
    const attemptId = first.daemon.sessions.get("bd-over")!.recorder.view().context.attemptId
    await first.stop()
    // The agent runs on (the terminal is still there); the lock is free for the next daemon.
    expect(await Effect.runPromise(t.terminals.service.exists("agent-bd-over"))).toBe(true)

    const second = await t.start(2)
    cleanup.push(second.stop)
    expect(second.restored).toEqual(["bd-over"])
    expect(t.stateOf(second.daemon, "bd-over")).toBe("running.working")
    expect(second.daemon.sessions.get("bd-over")!.recorder.view().context.attemptId).toBe(attemptId)
    expect((await second.run(second.ops.health)).running).toBe(1)
    await t.finish(second, "bd-over")
    await eventually(() => t.records.runs.get("bd-over")?.lifecycle_state === "done", 10_000, "bd-over done")
    expect(t.records.runs.get("bd-over")).toMatchObject({ attempt: 1, attempt_id: attemptId, status: "done" })
    await eventually(() => second.daemon.supervisor.getSnapshot().context.running.length === 0, 5_000, "the slot given back")
    expect((await second.run(second.ops.health)).running).toBe(0)
  })

  it("a session actor that throws is let go alone: its tmux session ended, its records finalized as failed saying why, the bead free to dispatch again", async () => {
    const t = setUp()
    cleanup.push(t.dispose)
    const d = await t.start(2)
    cleanup.push(d.stop)
    await d.run(d.ops.dispatch(t.dispatchBody("bd-other")))
    await d.run(d.ops.dispatch(t.dispatchBody("bd-throws")))
    await eventually(() => t.stateOf(d.daemon, "bd-throws") === "running.working" && t.stateOf(d.daemon, "bd-other") === "running.working", 10_000, "both running")
    // An event its reducers cannot take (a signal without its fields) throws inside bd-throws's machine.
    d.daemon.sessions.get("bd-throws")!.ref!.send({ type: "AGENT.SIGNAL" } as never)
    await eventually(() => t.records.runs.get("bd-throws")?.status === "failed", 10_000, "bd-throws finalized as failed")
    expect(t.records.runs.get("bd-throws")!.completion).toMatchObject({ detail: { reason: expect.stringMatching(/^its session actor failed \([\s\S]+\), so the daemon could not supervise it: it ended the tmux session agent-bd-throws/) } })
    expect(await Effect.runPromise(t.terminals.service.exists("agent-bd-throws"))).toBe(false)
    expect(d.daemon.supervisor.getSnapshot().status).toBe("active")
    expect(t.stateOf(d.daemon, "bd-other")).toBe("running.working")
    await eventually(() => !d.daemon.sessions.has("bd-throws"), 5_000, "bd-throws let go")
    expect(d.daemon.supervisor.getSnapshot().context.running.map((r) => r.bead)).toEqual(["bd-other"])
    await d.run(d.ops.dispatch(t.dispatchBody("bd-throws")))
    await eventually(() => t.stateOf(d.daemon, "bd-throws") === "running.working", 10_000, "bd-throws running again")
  })
})
