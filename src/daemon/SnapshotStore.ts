import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Data, Effect, Layer } from "effect"
import { writeFileAtomic } from "../records/RecordStore.js"

export class SnapshotError extends Data.TaggedError("SnapshotError")<{ readonly bead: string; readonly reason: string }> {}

/** The current snapshot format; an older or unknown one is refused with a clear message, never misread. */
export const SNAPSHOT_VERSION = 1

/** What the daemon needs to restore one session: how it was dispatched, and where its actor was. */
export interface SessionSnapshot {
  readonly version: number
  readonly bead: string
  /** The dispatch request, as the API took it (enough to rebuild the spec). */
  readonly request: unknown
  /** The actor's persisted snapshot (XState `getPersistedSnapshot()`). */
  readonly actor: unknown
  readonly history: ReadonlyArray<{ readonly state: string; readonly at: number; readonly attempt: number }>
  readonly savedAt: number
}

/** Persisted session actors, one per unfinished bead. */
export class SnapshotStore extends Context.Tag("warden/SnapshotStore")<
  SnapshotStore,
  {
    readonly save: (snapshot: SessionSnapshot) => Effect.Effect<void, SnapshotError>
    readonly remove: (bead: string) => Effect.Effect<void, SnapshotError>
    /** Every stored snapshot; ones that cannot be read or are of another version come back as errors, named. */
    readonly loadAll: Effect.Effect<{ readonly snapshots: ReadonlyArray<SessionSnapshot>; readonly refused: ReadonlyArray<SnapshotError> }>
  }
>() {}

const check = (bead: string, doc: unknown): SessionSnapshot | SnapshotError => {
  const snapshot = doc as Partial<SessionSnapshot> | null
  if (snapshot === null || typeof snapshot !== "object") return new SnapshotError({ bead, reason: "not a JSON object" })
  if (snapshot.version !== SNAPSHOT_VERSION) {
    return new SnapshotError({ bead, reason: `snapshot version ${String(snapshot.version)}, this warden reads version ${SNAPSHOT_VERSION}` })
  }
  return snapshot as SessionSnapshot
}

/** The embedded layer: `state/snapshots/<bead>.json`, written atomically on every transition. */
export const fileSnapshotStoreLayer = (dir: string) =>
  Layer.sync(SnapshotStore, () => {
    fs.mkdirSync(dir, { recursive: true })
    const file = (bead: string) => path.join(dir, `${bead}.json`)
    return SnapshotStore.of({
      // Synchronous on purpose: the daemon saves a session's snapshot in the tick it enters a state.
      save: (snapshot) =>
        Effect.try({
          try: () => writeFileAtomic(file(snapshot.bead), JSON.stringify(snapshot)),
          catch: (error) => new SnapshotError({ bead: snapshot.bead, reason: (error as Error).message })
        }),
      remove: (bead) =>
        Effect.try({
          try: () => fs.rmSync(file(bead), { force: true }),
          catch: (error) => new SnapshotError({ bead, reason: (error as Error).message })
        }),
      loadAll: Effect.sync(() => {
        const snapshots: SessionSnapshot[] = []
        const refused: SnapshotError[] = []
        for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".json") && !n.startsWith("."))) {
          const bead = name.slice(0, -".json".length)
          let doc: unknown
          try {
            doc = JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"))
          } catch (error) {
            refused.push(new SnapshotError({ bead, reason: `unreadable: ${(error as Error).message}` }))
            continue
          }
          const checked = check(bead, doc)
          if (checked instanceof SnapshotError) refused.push(checked)
          else snapshots.push(checked)
        }
        return { snapshots, refused }
      })
    })
  })

/** The test layer: snapshots in a map. */
export const memorySnapshotStoreLayer = () =>
  Layer.sync(SnapshotStore, () => {
    const store = new Map<string, unknown>()
    return SnapshotStore.of({
      save: (snapshot) => Effect.sync(() => void store.set(snapshot.bead, JSON.parse(JSON.stringify(snapshot)))),
      remove: (bead) => Effect.sync(() => void store.delete(bead)),
      loadAll: Effect.sync(() => {
        const snapshots: SessionSnapshot[] = []
        const refused: SnapshotError[] = []
        for (const [bead, doc] of store) {
          const checked = check(bead, doc)
          if (checked instanceof SnapshotError) refused.push(checked)
          else snapshots.push(checked)
        }
        return { snapshots, refused }
      })
    })
  })
