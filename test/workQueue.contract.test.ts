import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { fileBacked } from "./support/fileBacked.js"
import { QueueError, WorkQueue, fileWorkQueueLayer, memoryWorkQueueLayer, type QueueItem } from "../src/daemon/WorkQueue.js"

type Queue = Context.Tag.Service<WorkQueue>

/** How a layer is opened for the contract: a new empty queue, and the same queue opened again (a daemon restart). */
interface Opener {
  readonly fresh: () => Queue
  readonly reopen: (queue: Queue) => Queue
}

const build = (layer: Layer.Layer<WorkQueue>): Queue => Effect.runSync(Effect.provide(WorkQueue, layer))

/** Runs `effect`; a QueueError rejects with an Error that shows its message. */
const run = <A>(effect: Effect.Effect<A, QueueError>): Promise<A> =>
  Effect.runPromise(Effect.mapError(effect, (e) => new Error(`QueueError: ${e.message}`)))
const failure = <A>(effect: Effect.Effect<A, QueueError>): Promise<QueueError> => Effect.runPromise(Effect.flip(effect))

let at = 0
const item = (bead: string, priority = 2, profile = "claude"): Omit<QueueItem, "seq"> => ({ bead, profile, priority, enqueuedAt: ++at, retry: false })
const beads = (items: ReadonlyArray<QueueItem>) => items.map((i) => i.bead)
const open = { blockedProfiles: [] }

const contract = (label: string, opener: Opener) =>
  describe(`WorkQueue contract: ${label}`, () => {
    it("an empty queue lists nothing, claims null and removes nothing", async () => {
      const q = opener.fresh()
      expect(await run(q.list)).toEqual([])
      expect(await run(q.claim(open))).toBeNull()
      expect(await run(q.remove("bd-none"))).toBe(false)
      expect(await run(q.list)).toEqual([])
    })

    it("enqueue gives each item the next seq and returns it as stored", async () => {
      const q = opener.fresh()
      const a = await run(q.enqueue(item("bd-a")))
      const b = await run(q.enqueue({ ...item("bd-b", 0, "codex"), retry: true }))
      expect(a).toEqual({ ...item("bd-a"), enqueuedAt: a.enqueuedAt, seq: a.seq })
      expect(b).toMatchObject({ bead: "bd-b", profile: "codex", priority: 0, retry: true })
      expect(b.seq).toBeGreaterThan(a.seq)
      expect(await run(q.list)).toEqual([b, a])
    })

    it("claims priority 0 first, then first come first served by seq; list shows the same order", async () => {
      const q = opener.fresh()
      for (const [bead, priority] of [["bd-p2a", 2], ["bd-p4", 4], ["bd-p0a", 0], ["bd-p2b", 2], ["bd-p0b", 0], ["bd-p1", 1]] as const) {
        await run(q.enqueue(item(bead, priority)))
      }
      const order = ["bd-p0a", "bd-p0b", "bd-p1", "bd-p2a", "bd-p2b", "bd-p4"]
      expect(beads(await run(q.list))).toEqual(order)
      const claimed: string[] = []
      for (let next = await run(q.claim(open)); next !== null; next = await run(q.claim(open))) claimed.push(next.bead)
      expect(claimed).toEqual(order)
      expect(await run(q.list)).toEqual([])
    })

    it("a claim skips the items of blocked profiles, which keep their place", async () => {
      const q = opener.fresh()
      await run(q.enqueue(item("bd-c1", 0, "claude")))
      await run(q.enqueue(item("bd-x1", 1, "codex")))
      await run(q.enqueue(item("bd-c2", 1, "claude")))
      await run(q.enqueue(item("bd-s1", 3, "shell")))
      expect((await run(q.claim({ blockedProfiles: ["claude"] })))?.bead).toBe("bd-x1")
      expect((await run(q.claim({ blockedProfiles: ["claude", "codex"] })))?.bead).toBe("bd-s1")
      expect(await run(q.claim({ blockedProfiles: ["claude", "codex", "shell"] }))).toBeNull()
      expect(beads(await run(q.list))).toEqual(["bd-c1", "bd-c2"])
      expect((await run(q.claim(open)))?.bead).toBe("bd-c1")
      expect((await run(q.claim({ blockedProfiles: ["codex"] })))?.bead).toBe("bd-c2")
    })

    it("a claimed item is gone: it is claimed once, and removing it afterwards says it was not there", async () => {
      const q = opener.fresh()
      await run(q.enqueue(item("bd-once")))
      expect((await run(q.claim(open)))?.bead).toBe("bd-once")
      expect(await run(q.claim(open))).toBeNull()
      expect(await run(q.remove("bd-once"))).toBe(false)
    })

    it("remove takes out a queued bead (and only it), and says whether it was there", async () => {
      const q = opener.fresh()
      await run(q.enqueue(item("bd-r1")))
      await run(q.enqueue(item("bd-r2")))
      await run(q.enqueue(item("bd-r3")))
      expect(await run(q.remove("bd-r2"))).toBe(true)
      expect(await run(q.remove("bd-r2"))).toBe(false)
      expect(beads(await run(q.list))).toEqual(["bd-r1", "bd-r3"])
      expect((await run(q.claim(open)))?.bead).toBe("bd-r1")
    })

    it("a bead enqueued again while queued keeps its place and its item, unchanged", async () => {
      const q = opener.fresh()
      const first = await run(q.enqueue(item("bd-dup", 3)))
      await run(q.enqueue(item("bd-after", 3)))
      const again = await run(q.enqueue({ ...item("bd-dup", 0, "codex"), retry: true }))
      expect(again).toEqual(first)
      expect(await run(q.list)).toEqual([first, expect.objectContaining({ bead: "bd-after" })])
      // Once claimed, it can be queued again, behind what is queued now.
      expect((await run(q.claim(open)))?.bead).toBe("bd-dup")
      const back = await run(q.enqueue(item("bd-dup", 3)))
      expect(back.seq).toBeGreaterThan(first.seq)
      expect(beads(await run(q.list))).toEqual(["bd-after", "bd-dup"])
    })

    it("a seq is never given out twice, not even after the queue is emptied and opened again", async () => {
      const q = opener.fresh()
      const a = await run(q.enqueue(item("bd-s1")))
      const b = await run(q.enqueue(item("bd-s2")))
      await run(q.claim(open))
      await run(q.remove("bd-s2"))
      const reopened = opener.reopen(q)
      expect(await run(reopened.list)).toEqual([])
      const c = await run(reopened.enqueue(item("bd-s1")))
      expect(c.seq).toBeGreaterThan(Math.max(a.seq, b.seq))
    })

    it("what is queued is still queued, in order, when the queue is opened again", async () => {
      const q = opener.fresh()
      const a = await run(q.enqueue(item("bd-o1", 2)))
      const b = await run(q.enqueue(item("bd-o2", 1)))
      const reopened = opener.reopen(q)
      expect(await run(reopened.list)).toEqual([b, a])
      expect(await run(reopened.claim(open))).toEqual(b)
    })

    it("an item the queue cannot hold is refused, named, and nothing is queued", async () => {
      const q = opener.fresh()
      await run(q.enqueue(item("bd-ok")))
      const cases: ReadonlyArray<[Omit<QueueItem, "seq">, RegExp]> = [
        [item("bd-bad", 9), /priority/],
        [item("bd-bad", 1.5), /priority/],
        [item("../escape"), /bead/],
        [item("bd-bad", 2, ""), /profile/],
        [{ ...item("bd-bad"), enqueuedAt: Number.NaN }, /enqueuedAt/],
        [{ ...item("bd-bad"), extra: true } as Omit<QueueItem, "seq">, /extra/]
      ]
      for (const [bad, names] of cases) {
        const error = await failure(q.enqueue(bad))
        expect(error).toBeInstanceOf(QueueError)
        expect(error.message).toMatch(/^not a queue item: /)
        expect(error.message).toMatch(names)
      }
      expect(beads(await run(q.list))).toEqual(["bd-ok"])
    })

    it("concurrent calls are serialized: every enqueue gets its own seq, every item is claimed once", async () => {
      const q = opener.fresh()
      const queued = await Effect.runPromise(
        Effect.all(
          Array.from({ length: 20 }, (_, i) => q.enqueue(item(`bd-c${i}`))),
          { concurrency: "unbounded" }
        )
      )
      expect(new Set(queued.map((i) => i.seq)).size).toBe(20)
      const claimed = await Effect.runPromise(Effect.all(Array.from({ length: 25 }, () => q.claim(open)), { concurrency: "unbounded" }))
      const got = claimed.filter((c) => c !== null).map((c) => c.bead)
      expect(got.length).toBe(20)
      expect(new Set(got).size).toBe(20)
    })
  })

// --- the layers ------------------------------------------------------------------------------

contract("memory", {
  fresh: () => build(memoryWorkQueueLayer()),
  // The memory queue lives as long as its service: opening it again is the same service.
  reopen: (queue) => queue
})

// A new layer on the same file, as a restarted daemon opens it.
const files = fileBacked("queue", (dir) => path.join(dir, "state", "queue.json"), (file) => build(fileWorkQueueLayer(file)))
contract("file", { fresh: files.fresh, reopen: files.reopen })

describe("WorkQueue file layer: its file", () => {
  const fresh = () => {
    const file = path.join(files.scratch(), "queue.json")
    return { file, queue: build(fileWorkQueueLayer(file)) }
  }

  it("every change is in the file at once; reads and empty claims do not rewrite it", async () => {
    const { file, queue } = fresh()
    expect(fs.existsSync(file)).toBe(false)
    await run(queue.list)
    await run(queue.claim(open))
    expect(fs.existsSync(file)).toBe(false)
    const a = await run(queue.enqueue(item("bd-f1")))
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({ seq: a.seq, items: [a] })
    const stat = fs.statSync(file)
    fs.utimesSync(file, new Date(0), new Date(0))
    await run(queue.list)
    await run(queue.claim({ blockedProfiles: ["claude"] }))
    await run(queue.remove("bd-none"))
    await run(queue.enqueue(item("bd-f1")))
    expect(fs.statSync(file).mtimeMs).toBe(0)
    expect(stat.ino).toBe(fs.statSync(file).ino)
    await run(queue.claim(open))
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({ seq: a.seq, items: [] })
  })

  const corrupt: ReadonlyArray<[string, string, RegExp]> = [
    ["not JSON", '{"seq": 2, "items": [{"bead": "bd-qb", "prof', /is not JSON/],
    ["not a queue", '{"seq": 1, "items": [{"bead": 3}]}', /is not a queue: .*\["bead"\]/],
    ["an item of priority 9", JSON.stringify({ seq: 1, items: [{ ...item("bd-p9", 9), seq: 1 }] }), /is not a queue: .*\["priority"\]/],
    ["an empty file", "", /is not JSON/]
  ]
  for (const [what, text, reason] of corrupt) {
    it(`a queue file that is ${what} fails every call with an error naming the file, and is never overwritten`, async () => {
      const { file, queue } = fresh()
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, text)
      for (const call of [queue.list, queue.claim(open), queue.remove("bd-qb"), queue.enqueue(item("bd-new"))]) {
        const error = await failure(call as Effect.Effect<unknown, QueueError>)
        expect(error).toBeInstanceOf(QueueError)
        expect(error.message).toContain(`queue file ${file} `)
        expect(error.message).toMatch(reason)
      }
      expect(fs.readFileSync(file, "utf8")).toBe(text)
      // Once the operator puts a queue back, the same service reads it.
      fs.writeFileSync(file, JSON.stringify({ seq: 7, items: [] }))
      expect((await run(queue.enqueue(item("bd-new")))).seq).toBe(8)
    })
  }

  it("a queue file with a property this warden does not know is read (the start-up check lets it through too)", async () => {
    const { file, queue } = fresh()
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, JSON.stringify({ seq: 1, items: [{ ...item("bd-k"), seq: 1, note: "x" }], note: "y" }))
    expect((await run(queue.claim(open)))?.bead).toBe("bd-k")
  })
})

describe("WorkQueue: the memory layer is a whole fake", () => {
  it("has every method the file layer has, and no other", () => {
    expect(Object.keys(build(memoryWorkQueueLayer())).sort()).toEqual(Object.keys(build(fileWorkQueueLayer(path.join(files.root, "keys", "queue.json")))).sort())
  })
})
