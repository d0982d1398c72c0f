import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { writeFileAtomic } from "../records/RecordStore.js"
import { QueueFile } from "./stateFiles.js"

/**
 * Why a queue call failed: `unreadable` (the queue file cannot be read), `invalid` (it is not JSON, or not a
 * queue), `invalid-item` (`enqueue` was given what is not a queue item), `write-failed` (the change could not be saved).
 */
export const QueueErrorReason = Schema.Literal("unreadable", "invalid", "invalid-item", "write-failed")
export type QueueErrorReason = typeof QueueErrorReason.Type

/** A queue call failed; `detail` (the message) names the file and what is wrong with it. */
export class QueueError extends Schema.TaggedError<QueueError>()("QueueError", {
  reason: QueueErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

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
 * Which items `claim` may take, as data (not a predicate) so that a database
 * layer can turn it into its query.
 */
export interface ClaimFilter {
  /** Profiles at their quota: their items stay queued, and the next allowed item is taken. */
  readonly blockedProfiles: ReadonlyArray<string>
}

/**
 * The daemon's queue of beads waiting for a slot. The embedded layer keeps it
 * in a file of the workspace; a database layer can claim with
 * `FOR UPDATE SKIP LOCKED` behind the same methods. Every layer passes
 * test/workQueue.contract.test.ts.
 */
export class WorkQueue extends Context.Tag("warden/WorkQueue")<
  WorkQueue,
  {
    /**
     * Queues a bead behind the items of its priority already queued (a `seq` never given out
     * before, not even before a restart). A bead already queued keeps its
     * place: the item it has is returned, unchanged. An item that is not a
     * valid queue item is refused, named, and nothing is queued.
     */
    readonly enqueue: (item: Omit<QueueItem, "seq">) => Effect.Effect<QueueItem, QueueError>
    /** Takes the most urgent, oldest item whose profile is not blocked; null when there is none. */
    readonly claim: (filter: ClaimFilter) => Effect.Effect<QueueItem | null, QueueError>
    /** Removes a bead that has not been claimed (cancel while queued); whether it was there. */
    readonly remove: (bead: string) => Effect.Effect<boolean, QueueError>
    /** Every queued item, in the order `claim` would take them. */
    readonly list: Effect.Effect<ReadonlyArray<QueueItem>, QueueError>
  }
>() {}

/** Priority first (0 before 4), then arrival. */
export const queueOrder = (a: QueueItem, b: QueueItem): number => a.priority - b.priority || a.seq - b.seq

/** What is wrong with `doc` as a `schema`, every issue with its path; null when nothing is. */
const problem = <A, I>(schema: Schema.Schema<A, I, never>, doc: unknown, onExcessProperty: "ignore" | "error"): string | null => {
  const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty })(doc)
  return Either.isLeft(decoded) ? ParseResult.TreeFormatter.formatErrorSync(decoded.left).replace(/\s+/g, " ") : null
}

/** One item of the queue file (the schema the daemon's start-up also checks the file against). */
const QueueItemSchema = QueueFile.fields.items.value
const NewItemSchema = QueueItemSchema.pipe(Schema.omit("seq"))

type QueueState = { seq: number; items: QueueItem[] }

const makeQueue = (load: () => QueueState, save: (state: QueueState) => void) => {
  // One writer: the daemon's queue calls are serialized through this lock.
  const lock = Effect.unsafeMakeSemaphore(1)
  /** Runs `f` on the stored state; saves it only when `f` says it changed it (a read never rewrites the file). */
  const guarded = <A>(f: (state: QueueState) => { readonly result: A; readonly changed: boolean }) =>
    lock.withPermits(1)(
      Effect.suspend(() => {
        try {
          const state = load()
          const { result, changed } = f(state)
          if (changed) {
            try {
              save(state)
            } catch (error) {
              return Effect.fail(new QueueError({ reason: "write-failed", detail: (error as Error).message }))
            }
          }
          return Effect.succeed(result)
        } catch (error) {
          // `load` and `f` refuse with QueueErrors; anything else they throw is a bug here, left a defect.
          if (error instanceof QueueError) return Effect.fail(error)
          throw error
        }
      })
    )
  return WorkQueue.of({
    enqueue: (item) =>
      guarded((state) => {
        // Checked as it will be read back, before anything is written: an item the file's schema
        // refuses (a NaN time becomes null in JSON) would make the whole queue unreadable.
        let stored: unknown
        try {
          stored = JSON.parse(JSON.stringify(item))
        } catch (error) {
          throw new QueueError({ reason: "invalid-item", detail: `not a queue item: not JSON-safe: ${(error as Error).message}` })
        }
        const why = problem(NewItemSchema, stored, "error")
        if (why !== null) throw new QueueError({ reason: "invalid-item", detail: `not a queue item: ${why}` })
        const existing = state.items.find((i) => i.bead === item.bead)
        if (existing !== undefined) return { result: existing, changed: false }
        const queued = { ...(stored as Omit<QueueItem, "seq">), seq: ++state.seq }
        state.items.push(queued)
        return { result: queued, changed: true }
      }),
    claim: ({ blockedProfiles }) =>
      guarded((state) => {
        const next = [...state.items].sort(queueOrder).find((item) => !blockedProfiles.includes(item.profile)) ?? null
        if (next !== null) state.items = state.items.filter((item) => item.bead !== next.bead)
        return { result: next, changed: next !== null }
      }),
    remove: (bead) =>
      guarded((state) => {
        const before = state.items.length
        state.items = state.items.filter((item) => item.bead !== bead)
        return { result: state.items.length < before, changed: state.items.length < before }
      }),
    list: guarded((state) => ({ result: [...state.items].sort(queueOrder), changed: false }))
  })
}

/**
 * The embedded layer: `state/queue.json`, read on every call and rewritten
 * atomically on every change. A file that is not a queue (corrupt, edited by
 * hand) fails every call with an error naming the file and what is wrong, and
 * is left as it is for the operator (the daemon moves such a file aside at
 * start-up); it is never overwritten.
 */
export const fileWorkQueueLayer = (file: string) =>
  Layer.sync(WorkQueue, () => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    return makeQueue(
      () => {
        let text: string
        try {
          text = fs.readFileSync(file, "utf8")
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return { seq: 0, items: [] }
          throw new QueueError({ reason: "unreadable", detail: `queue file ${file} cannot be read: ${(error as Error).message}` })
        }
        let doc: unknown
        try {
          doc = JSON.parse(text)
        } catch (error) {
          throw new QueueError({ reason: "invalid", detail: `queue file ${file} is not JSON: ${(error as Error).message}` })
        }
        // The same check as the start-up's quarantine (stateFiles.ts), so a file it let through is read here.
        const why = problem(QueueFile, doc, "ignore")
        if (why !== null) throw new QueueError({ reason: "invalid", detail: `queue file ${file} is not a queue: ${why}` })
        return doc as QueueState
      },
      (state) => writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`)
    )
  })

/** The test layer: the same queue in memory. */
export const memoryWorkQueueLayer = () =>
  Layer.sync(WorkQueue, () => {
    let state: QueueState = { seq: 0, items: [] }
    return makeQueue(
      () => ({ seq: state.seq, items: [...state.items] }),
      (next) => {
        state = next
      }
    )
  })
