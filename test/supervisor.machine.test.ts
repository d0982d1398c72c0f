import { Effect, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import { createActor, fromPromise, type ActorRefFrom } from "xstate"
import { supervisorMachine, type AdmittedItem, type SupervisorLimits, type SupervisorMachine } from "../machines/supervisor.machine.js"
import { memoryWorkQueueLayer, WorkQueue } from "../src/daemon/WorkQueue.js"
import { waitForSnapshot } from "./support/waitForSnapshot.js"

/**
 * Waits until the supervisor is idle. It is idle only when no claim is in flight and it may claim
 * nothing more (`idle` moves straight on to `claiming` while a slot is free and work may wait),
 * so everything it could admit by now has been admitted.
 */
const idle = (actor: ActorRefFrom<SupervisorMachine>) => waitForSnapshot(actor, "the supervisor to be idle", (snapshot) => snapshot.matches("idle"))

/** The supervisor with the in-memory WorkQueue behind its claims. */
const harness = (limits: Partial<SupervisorLimits> = {}, options: { readonly begin?: boolean } = {}) => {
  const runtime = ManagedRuntime.make(memoryWorkQueueLayer())
  const admitted: AdmittedItem[] = []
  const machine = supervisorMachine.provide({
    actors: {
      claimNext: fromPromise(({ input }) =>
        runtime.runPromise(
          Effect.flatMap(WorkQueue, (queue) => queue.claim({ blockedProfiles: input.blocked }))
        )
      )
    }
  })
  const actor = createActor(machine, { input: { limits: { concurrency: 10, quotas: {}, minFreeMemoryMb: 100, ...limits } } })
  actor.on("admit", (event) => admitted.push(event.item))
  actor.start()
  if (options.begin !== false) actor.send({ type: "START" })
  const waitIdle = () => idle(actor)
  let at = 0
  /** Queues a bead and tells the supervisor, without waiting for what it does. */
  const add = async (bead: string, priority: number, profile = "demo") => {
    await runtime.runPromise(Effect.flatMap(WorkQueue, (q) => q.enqueue({ bead, profile, priority, enqueuedAt: ++at, retry: false })))
    actor.send({ type: "ENQUEUED" })
  }
  const enqueue = async (bead: string, priority: number, profile = "demo") => {
    await add(bead, priority, profile)
    await waitIdle()
  }
  const queued = () => runtime.runPromise(Effect.flatMap(WorkQueue, (q) => q.list))
  return { actor, admitted, idle: waitIdle, add, enqueue, queued, runtime }
}

describe("supervisor machine", () => {
  it("admits by priority (0 first), then first come first served, within the concurrency limit", async () => {
    const h = harness({ concurrency: 1 })
    // Hold the one slot, then queue three beads.
    await h.enqueue("bd-first", 2)
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-first"])
    await h.enqueue("bd-low", 4)
    await h.enqueue("bd-high", 0)
    await h.enqueue("bd-high-2", 0)
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-first"])
    for (const done of ["bd-first", "bd-high", "bd-high-2"]) {
      h.actor.send({ type: "RELEASED", bead: done })
      await h.idle()
    }
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-first", "bd-high", "bd-high-2", "bd-low"])
    expect(await h.queued()).toEqual([])
  })

  it("keeps each profile within its quota while others still run", async () => {
    const h = harness({ concurrency: 3, quotas: { claude: 1 } })
    await h.enqueue("bd-c1", 1, "claude")
    await h.enqueue("bd-c2", 0, "claude")
    await h.enqueue("bd-d1", 3, "demo")
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-c1", "bd-d1"])
    expect((await h.queued()).map((i) => i.bead)).toEqual(["bd-c2"])
    h.actor.send({ type: "RELEASED", bead: "bd-c1" })
    await h.idle()
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-c1", "bd-d1", "bd-c2"])
  })

  it("admits nothing without memory headroom, and resumes when memory frees up", async () => {
    const h = harness({ minFreeMemoryMb: 500 })
    h.actor.send({ type: "MEMORY", freeMb: 200 })
    await h.enqueue("bd-1", 1)
    expect(h.admitted).toEqual([])
    h.actor.send({ type: "MEMORY", freeMb: 800 })
    await h.idle()
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-1"])
  })

  it("a memory reading wakes it only when it gives headroom back: an idle supervisor does not claim every 5 s", async () => {
    let claims = 0
    const machine = supervisorMachine.provide({
      actors: {
        claimNext: fromPromise(async () => {
          claims++
          return null
        })
      }
    })
    const actor = createActor(machine, { input: { limits: { concurrency: 2, quotas: {}, minFreeMemoryMb: 500 } } })
    actor.start()
    actor.send({ type: "START" })
    await idle(actor)
    const atRest = claims
    for (let i = 0; i < 10; i++) actor.send({ type: "MEMORY", freeMb: 800 })
    await idle(actor)
    expect(claims).toBe(atRest)
    // Short of memory, then back above the limit: that is worth a claim.
    actor.send({ type: "MEMORY", freeMb: 100 })
    await idle(actor)
    expect(claims).toBe(atRest)
    actor.send({ type: "MEMORY", freeMb: 900 })
    await idle(actor)
    expect(claims).toBe(atRest + 1)
    expect(actor.getSnapshot().context.freeMemoryMb).toBe(900)
  })

  it("a draining supervisor admits nothing new", async () => {
    const h = harness()
    h.actor.send({ type: "DRAIN", on: true })
    await h.enqueue("bd-1", 1)
    expect(h.admitted).toEqual([])
    h.actor.send({ type: "DRAIN", on: false })
    await h.idle()
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-1"])
  })

  it("after a restart, a bead queued before it waits for the slot a restored running session holds", async () => {
    // The order the daemon's restore reports in: the queue already holds bd-queued, then the running
    // session is adopted, then admitting begins. Nothing may be claimed before the adoption counts.
    const h = harness({ concurrency: 1 }, { begin: false })
    await h.add("bd-queued", 2)
    h.actor.send({ type: "ADOPTED", bead: "bd-running", profile: "demo" })
    h.actor.send({ type: "START" })
    await h.idle()
    expect(h.admitted).toEqual([])
    h.actor.send({ type: "RELEASED", bead: "bd-running" })
    await h.idle()
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-queued"])
  })

  it("adopted sessions (restored after a restart) hold their slots", async () => {
    const h = harness({ concurrency: 1 })
    h.actor.send({ type: "ADOPTED", bead: "bd-restored", profile: "demo" })
    await h.enqueue("bd-new", 0)
    expect(h.admitted).toEqual([])
    h.actor.send({ type: "RELEASED", bead: "bd-restored" })
    await h.idle()
    expect(h.admitted.map((i) => i.bead)).toEqual(["bd-new"])
  })

  it("an unprovided claim fails loudly and the supervisor waits instead of spinning", async () => {
    const actor = createActor(supervisorMachine, { input: { limits: { concurrency: 1, quotas: {}, minFreeMemoryMb: 0 } } })
    actor.start()
    actor.send({ type: "START" })
    await idle(actor)
    expect(actor.getSnapshot().value).toBe("idle")
    expect(actor.getSnapshot().context.mayHaveWork).toBe(false)
  })
})

