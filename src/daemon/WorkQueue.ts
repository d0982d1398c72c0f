import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Data, Effect, Layer } from "effect"
import { writeFileAtomic } from "../records/RecordStore.js"

export class QueueError extends Data.TaggedError("QueueError")<{ readonly reason: string }> {}

/** A dispatched bead waiting for a slot. */
export interface QueueItem {
  readonly bead: string
  readonly profile: string
  /** 0 (most urgent) to 4, as the beads tracker numbers them. */
  readonly priority: number
  /** Arrival order: first come, first served within a priority. */
  readonly seq: number
  readonly enqueuedAt: number
  /** A retry coming back through the queue, or a first attempt. */
  readonly retry: boolean
}

/**
 * The daemon's queue of beads waiting for a slot. The embedded layer keeps it
 * in a file of the workspace; a database layer can claim with
 * `FOR UPDATE SKIP LOCKED` behind the same methods.
 */
export class WorkQueue extends Context.Tag("warden/WorkQueue")<
  WorkQueue,
  {
    readonly enqueue: (item: Omit<QueueItem, "seq">) => Effect.Effect<QueueItem, QueueError>
    /** Takes the most urgent, oldest item whose profile is allowed; null when none is. */
    readonly claim: (allowedProfiles: (profile: string) => boolean) => Effect.Effect<QueueItem | null, QueueError>
    /** Removes a bead that has not been claimed (cancel while queued); whether it was there. */
    readonly remove: (bead: string) => Effect.Effect<boolean, QueueError>
    readonly list: Effect.Effect<ReadonlyArray<QueueItem>, QueueError>
  }
>() {}

/** Priority first (0 before 4), then arrival. */
export const queueOrder = (a: QueueItem, b: QueueItem): number => a.priority - b.priority || a.seq - b.seq

const makeQueue = (load: () => { seq: number; items: QueueItem[] }, save: (state: { seq: number; items: QueueItem[] }) => void) => {
  // One writer: the daemon's queue calls are serialized through this lock.
  const lock = Effect.unsafeMakeSemaphore(1)
  const guarded = <A>(f: (state: { seq: number; items: QueueItem[] }) => A) =>
    lock.withPermits(1)(
      Effect.try({
        try: () => {
          const state = load()
          const result = f(state)
          save(state)
          return result
        },
        catch: (error) => new QueueError({ reason: (error as Error).message })
      })
    )
  return WorkQueue.of({
    enqueue: (item) =>
      guarded((state) => {
        const existing = state.items.find((i) => i.bead === item.bead)
        if (existing !== undefined) return existing
        const queued = { ...item, seq: ++state.seq }
        state.items.push(queued)
        return queued
      }),
    claim: (allowed) =>
      guarded((state) => {
        const next = [...state.items].sort(queueOrder).find((item) => allowed(item.profile)) ?? null
        if (next !== null) state.items = state.items.filter((item) => item.bead !== next.bead)
        return next
      }),
    remove: (bead) =>
      guarded((state) => {
        const before = state.items.length
        state.items = state.items.filter((item) => item.bead !== bead)
        return state.items.length < before
      }),
    list: guarded((state) => [...state.items].sort(queueOrder))
  })
}

/** The embedded layer: `state/queue.json`, rewritten atomically on every change. */
export const fileWorkQueueLayer = (file: string) =>
  Layer.sync(WorkQueue, () => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    return makeQueue(
      () => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { seq: number; items: QueueItem[] }) : { seq: 0, items: [] }),
      (state) => writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`)
    )
  })

/** The test layer: the same queue in memory. */
export const memoryWorkQueueLayer = () =>
  Layer.sync(WorkQueue, () => {
    let state = { seq: 0, items: [] as QueueItem[] }
    return makeQueue(
      () => ({ seq: state.seq, items: [...state.items] }),
      (next) => {
        state = next
      }
    )
  })
