import { describe, expect, it } from "vitest"
import { SimulatedClock, createActor, fromCallback, fromPromise, type AnyActorRef, type InspectionEvent } from "xstate"
import { agentSessionMachine } from "../machines/agentSession.machine.js"
import type { SessionEvent, SessionPolicy, WatchInput } from "../machines/agentSession.types.js"
import { sessionSystemId, supervisorMachine, type AdmittedItem } from "../machines/supervisor.machine.js"
import { MachineEventSource, beadOfActor, type MachineEvent } from "../src/daemon/machineEvents.js"
import { followSession, type FollowedSession } from "../src/daemon/sessionSlots.js"
import { flattenState } from "../src/records/buildRecords.js"
import { restoringLogic } from "../src/sessions/sessionActors.js"
import { waitForSnapshot } from "./support/waitForSnapshot.js"

const policy: SessionPolicy = {
  timeoutMs: 60_000,
  stallMs: 10_000,
  sources: ["signal", "exit"],
  retry: {
    maxAttempts: 2,
    backoffInitialMs: 30_000,
    backoffFactor: 2,
    backoffMaxMs: 60_000,
    retryOn: ["agent-exited", "agent-failed"]
  }
}

/**
 * The whole tree on ONE simulated clock: the root supervisor, its session
 * children (the real lifecycle machine, with in-memory effects), and the
 * daemon's own slot follower (`followSession`) fed by the root's inspection,
 * as the daemon feeds it. The queue is an in-memory list behind `claimNext`.
 */
const tree = (concurrency: number) => {
  const clock = new SimulatedClock()
  clock.set(5_000_000)
  const queue: Array<{ bead: string; profile: string; priority: number; retry: boolean }> = []
  const watchers = new Map<string, { input: WatchInput; sendBack: (event: SessionEvent) => void }>()
  const session = restoringLogic(
    agentSessionMachine.provide({
      actors: {
        preflight: fromPromise(async ({ input }) => ({
          at: clock.now(),
          attemptId: `att-${input.bead}-${input.attempt}`,
          ok: true,
          checks: [{ name: "repo-exists", ok: true, detail: "/repo" }]
        })),
        launch: fromPromise(async ({ input }) => ({
          at: clock.now(),
          ok: true,
          error: null,
          sessionName: `agent-${input.bead}`,
          transcriptPath: null,
          baseCommit: "abc",
          screen: [],
          signalsOffset: 0,
          promptPending: false
        })),
        watchAgent: fromCallback<SessionEvent, WatchInput>(({ input, sendBack }) => {
          watchers.set(input.bead, { input, sendBack })
          return () => watchers.delete(input.bead)
        }),
        capture: fromPromise(async () => ({ at: clock.now(), outputSummary: null, screen: [], report: null })),
        verify: fromPromise(async () => ({
          at: clock.now(),
          overall: "pass" as const,
          checks: [],
          diffStat: "",
          newCommits: ["abc1 work"]
        })),
        clean: fromPromise(async () => ({ at: clock.now() })),
        notify: fromPromise(async () => ({ at: clock.now() })),
        remember: fromPromise(async () => ({ at: clock.now() }))
      }
    })
  )
  const claimNext = fromPromise<AdmittedItem | null, { blocked: ReadonlyArray<string> }>(async ({ input }) => {
    const index = queue.findIndex((item) => !input.blocked.includes(item.profile))
    if (index < 0) return null
    const [item] = queue.splice(index, 1)
    return { ...item!, at: clock.now() }
  })
  const followed = new Map<string, FollowedSession>()
  const admitted: string[] = []
  const machineEvents: MachineEvent[] = []
  const source = new MachineEventSource(() => clock.now())
  let root!: ReturnType<typeof createActor<typeof machine>>
  const inspect = (event: InspectionEvent) => {
    const taken = source.take(event)
    if (taken !== null) machineEvents.push(taken)
    if (event.type !== "@xstate.snapshot") return
    const systemId = (event.actorRef as { systemId?: string }).systemId
    const bead = systemId === undefined ? null : beadOfActor(systemId)
    const slot = bead === null ? undefined : followed.get(bead)
    const snapshot = event.snapshot as unknown as Parameters<typeof followSession>[1] & { status: string }
    if (slot === undefined || (snapshot.status !== "active" && snapshot.status !== "done")) return
    followSession(slot, snapshot, root, (retry) => {
      queue.push({ bead: slot.bead, profile: slot.profile, priority: 1, retry })
      root.send({ type: "ENQUEUED" })
    })
  }
  const machine = supervisorMachine.provide({ actors: { claimNext, session } })
  root = createActor(machine, { clock, inspect, systemId: "supervisor", input: { limits: { concurrency, quotas: {}, minFreeMemoryMb: 0 } } })
  root.on("admit", (event) => admitted.push(event.item.bead))
  root.start()
  const dispatch = (bead: string) => {
    followed.set(bead, { bead, profile: "demo", restored: false, holdsSlot: false, state: null })
    queue.push({ bead, profile: "demo", priority: 1, retry: false })
    root.send({ type: "SPAWN", input: { bead, policy } })
    root.send({ type: "ENQUEUED" })
  }
  const child = (bead: string) => root.system.get(sessionSystemId(bead)) as AnyActorRef | undefined
  const state = (bead: string) => flattenState(child(bead)?.getSnapshot().value)
  const until = (bead: string, what: string, condition: (state: string) => boolean) =>
    waitForSnapshot(child(bead)!, `${bead} ${what}`, (snapshot) => condition(flattenState(snapshot.value)))
  /** Waits until the root has claimed everything it may (it is idle only when no claim is in flight and nothing more is admissible). */
  const settled = () => waitForSnapshot(root, "the root to settle", (snapshot) => snapshot.matches("idle"))
  const slots = () => root.getSnapshot().context.running.map((r) => r.bead)
  return { clock, root, dispatch, child, state, until, settled, slots, admitted, watchers, machineEvents, queue }
}

describe("the supervision tree on one simulated clock", () => {
  it("runs two sessions as the root's children through a slot, with a retry after its backoff, and lets them go", async () => {
    const t = tree(1)
    t.root.send({ type: "START" })
    t.dispatch("bd-a")
    t.dispatch("bd-b")
    // One slot: bd-a is admitted, bd-b waits queued as a child of the root.
    await t.until("bd-a", "running", (s) => s.startsWith("running"))
    await t.settled()
    expect(t.state("bd-b")).toBe("queued")
    expect(t.slots()).toEqual(["bd-a"])
    expect(Object.keys(t.root.getSnapshot().children).sort()).toEqual(["session:bd-a#1", "session:bd-b#2"])

    // bd-a's agent exits with 1: a retry after 30 s of backoff. Leaving its slot (cleaning) lets bd-b in.
    t.watchers.get("bd-a")!.sendBack({ type: "AGENT.EXITED", at: t.clock.now(), exitCode: 1, lost: false })
    await t.until("bd-a", "backoff", (s) => s === "backoff")
    await t.until("bd-b", "running", (s) => s.startsWith("running"))
    expect(t.slots()).toEqual(["bd-b"])

    // The backoff runs on the same clock: nothing happens before it is due.
    t.clock.increment(29_999)
    expect(t.state("bd-a")).toBe("backoff")
    t.clock.increment(1)
    await t.until("bd-a", "queued again", (s) => s === "queued")
    await t.settled()
    // Requeued as a retry, it waits for the slot bd-b holds.
    expect(t.state("bd-a")).toBe("queued")
    expect(t.child("bd-a")!.getSnapshot().context.attempt).toBe(1)

    t.watchers.get("bd-b")!.sendBack({
      type: "AGENT.SIGNAL",
      signal: { attemptId: t.child("bd-b")!.getSnapshot().context.attemptId, status: "done", summary: "b done", source: "signal", at: t.clock.now() }
    })
    await t.until("bd-a", "running its second attempt", (s) => s.startsWith("running"))
    expect(t.child("bd-b")).toBeUndefined() // over: unregistered from the system
    expect(t.slots()).toEqual(["bd-a"])
    expect(t.child("bd-a")!.getSnapshot().context.attempt).toBe(2)

    t.watchers.get("bd-a")!.sendBack({
      type: "AGENT.SIGNAL",
      signal: { attemptId: t.child("bd-a")!.getSnapshot().context.attemptId, status: "done", summary: "a done", source: "signal", at: t.clock.now() }
    })
    const final = await waitForSnapshot(t.child("bd-a")!, "bd-a done", (snapshot) => snapshot.status === "done")
    expect(final.value).toBe("done")
    await t.settled()
    expect(t.slots()).toEqual([])
    expect(t.admitted).toEqual(["bd-a", "bd-b", "bd-a"])

    // The root is still healthy, and the machine events name each actor, with the backoff's times on the simulated clock.
    expect(t.root.getSnapshot().status).toBe("active")
    const backoff = t.machineEvents.filter((e) => e.kind === "state" && e.actor === "session:bd-a" && e.value === "backoff")
    const requeued = t.machineEvents.filter((e) => e.kind === "state" && e.actor === "session:bd-a" && e.value === "queued")
    expect(backoff).toHaveLength(1)
    expect(requeued.map((e) => e.at)).toEqual([5_000_000, backoff[0]!.at + 30_000])
    expect(t.machineEvents.some((e) => e.kind === "state" && e.actor === "supervisor")).toBe(true)
  })

  it("never spawns a live bead twice (a duplicate systemId would stop the tree), and a child's exception stops only that child", async () => {
    const t = tree(2)
    t.root.send({ type: "START" })
    const refused: string[] = []
    t.root.on("spawnRefused", (event) => refused.push(event.bead))
    t.dispatch("bd-x")
    t.root.send({ type: "SPAWN", input: { bead: "bd-x", policy } })
    expect(refused).toEqual(["bd-x"])
    expect(t.root.getSnapshot().status).toBe("active")

    t.dispatch("bd-y")
    await t.until("bd-y", "running", (s) => s.startsWith("running"))
    const failed: string[] = []
    t.root.on("sessionFailed", (event) => failed.push(event.bead))
    // An event the machine's reducers cannot take (a signal without its fields) throws inside bd-y's machine.
    t.child("bd-y")!.send({ type: "AGENT.SIGNAL" } as never)
    await waitForSnapshot(t.root, "the root to let bd-y go", (snapshot) => !("bd-y" in snapshot.context.sessions))
    expect(failed).toEqual(["bd-y"])
    expect(t.root.getSnapshot().status).toBe("active")
    expect(t.state("bd-x")).toMatch(/^running/)
    expect(t.slots()).toEqual(["bd-x"])
  })
})
