import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, Schema } from "effect"
import { writeFileAtomic } from "../records/RecordStore.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"

/**
 * Why a snapshot was refused: `invalid-bead` (not a bead id), `not-json-safe` (cannot be stored as JSON),
 * `unreadable` (the stored text cannot be read or parsed), `invalid` (parsed, but not a snapshot object, or
 * stored under another bead), `version` (of another snapshot version), `io` (the store could not write or remove it).
 */
export const SnapshotErrorReason = Schema.Literal("invalid-bead", "not-json-safe", "unreadable", "invalid", "version", "io")
export type SnapshotErrorReason = typeof SnapshotErrorReason.Type

/** A bead's snapshot could not be stored, removed or restored; `detail` (the message) says what is wrong. */
export class SnapshotError extends Schema.TaggedError<SnapshotError>()("SnapshotError", {
  bead: Schema.String,
  reason: SnapshotErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

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

/**
 * Persisted session actors, one per unfinished bead, each readable (and
 * quarantinable) on its own. Every layer passes
 * test/snapshotStore.contract.test.ts.
 *
 * `save` and `remove` take effect before they return and need no asynchronous
 * work: the daemon runs them with `runSync` in the tick a session enters a
 * state, so a snapshot is never behind what that state then does on disk. The
 * order of one bead's saves and removal is the daemon's to keep (the store
 * keeps no memory of a removal: a save after it stores the bead again).
 */
export class SnapshotStore extends Context.Tag("warden/SnapshotStore")<
  SnapshotStore,
  {
    /** Stores the bead's snapshot as JSON would carry it, in place of the one it had; the version is checked on load, not here. */
    readonly save: (snapshot: SessionSnapshot) => Effect.Effect<void, SnapshotError>
    /** Removes the bead's snapshot; removing one that is not there is not an error. */
    readonly remove: (bead: string) => Effect.Effect<void, SnapshotError>
    /**
     * Every stored snapshot, ordered by bead; ones that cannot be read or are of
     * another version come back as errors, named, and stay stored until removed.
     */
    readonly loadAll: Effect.Effect<{ readonly snapshots: ReadonlyArray<SessionSnapshot>; readonly refused: ReadonlyArray<SnapshotError> }>
  }
>() {}

const check = (bead: string, doc: unknown): SessionSnapshot | SnapshotError => {
  const snapshot = doc as Partial<SessionSnapshot> | null
  if (snapshot === null || typeof snapshot !== "object" || Array.isArray(snapshot)) return new SnapshotError({ bead, reason: "invalid", detail: "not a JSON object" })
  if (snapshot.version !== SNAPSHOT_VERSION) {
    return new SnapshotError({ bead, reason: "version", detail: `snapshot version ${String(snapshot.version)}, this warden reads version ${SNAPSHOT_VERSION}` })
  }
  // Restored and later removed under the bead it names: one stored under another name would never be removed.
  if (snapshot.bead !== bead) return new SnapshotError({ bead, reason: "invalid", detail: `stored as ${bead} but holds the snapshot of ${String(snapshot.bead)}` })
  return snapshot as SessionSnapshot
}

/** Refuses what is not a bead id (a file layer would otherwise write outside its folder). */
const beadProblem = (bead: unknown): SnapshotError | null =>
  typeof bead === "string" && BEAD_ID.test(bead) ? null : new SnapshotError({ bead: String(bead), reason: "invalid-bead", detail: `not a bead id (a bead id must match ${BEAD_ID.source})` })

/** The snapshot as JSON carries it: what is stored is what a restart reads back. */
const jsonCopy = (snapshot: SessionSnapshot): string | SnapshotError => {
  try {
    return JSON.stringify(snapshot)
  } catch (error) {
    return new SnapshotError({ bead: snapshot.bead, reason: "not-json-safe", detail: `not JSON-safe: ${(error as Error).message}` })
  }
}

const byBead = (a: { readonly bead: string }, b: { readonly bead: string }) => (a.bead < b.bead ? -1 : a.bead > b.bead ? 1 : 0)

/** Where a layer keeps each bead's snapshot as JSON text; every call is synchronous (see `SnapshotStore`). */
interface SnapshotTexts {
  readonly write: (bead: string, text: string) => void
  readonly delete: (bead: string) => void
  /** Every stored bead, with a read of its text (that may throw). */
  readonly entries: () => Iterable<{ readonly bead: string; readonly read: () => string }>
}

/** The store's contract over a place to keep texts: beads checked, snapshots JSON-safe, loads checked and ordered. */
const makeStore = (texts: SnapshotTexts) => {
  const attempt = (bead: string, f: () => void) =>
    Effect.try({ try: f, catch: (error) => new SnapshotError({ bead, reason: "io", detail: (error as Error).message }) })
  return SnapshotStore.of({
    save: (snapshot) =>
      Effect.suspend(() => {
        const problem = beadProblem(snapshot.bead)
        if (problem !== null) return Effect.fail(problem)
        const text = jsonCopy(snapshot)
        return text instanceof SnapshotError ? Effect.fail(text) : attempt(snapshot.bead, () => texts.write(snapshot.bead, text))
      }),
    remove: (bead) =>
      Effect.suspend(() => {
        const problem = beadProblem(bead)
        return problem !== null ? Effect.fail(problem) : attempt(bead, () => texts.delete(bead))
      }),
    loadAll: Effect.sync(() => {
      const snapshots: SessionSnapshot[] = []
      const refused: SnapshotError[] = []
      for (const { bead, read } of texts.entries()) {
        let doc: unknown
        try {
          doc = JSON.parse(read())
        } catch (error) {
          refused.push(new SnapshotError({ bead, reason: "unreadable", detail: `unreadable: ${(error as Error).message}` }))
          continue
        }
        const checked = check(bead, doc)
        if (checked instanceof SnapshotError) refused.push(checked)
        else snapshots.push(checked)
      }
      return { snapshots: snapshots.sort(byBead), refused: refused.sort(byBead) }
    })
  })
}

/** The embedded layer: `state/snapshots/<bead>.json`, written atomically on every transition. */
export const fileSnapshotStoreLayer = (dir: string) =>
  Layer.sync(SnapshotStore, () => {
    fs.mkdirSync(dir, { recursive: true })
    const file = (bead: string) => path.join(dir, `${bead}.json`)
    return makeStore({
      write: (bead, text) => writeFileAtomic(file(bead), text),
      delete: (bead) => fs.rmSync(file(bead), { force: true }),
      entries: () => {
        let names: string[]
        try {
          names = fs.readdirSync(dir)
        } catch (error) {
          // The folder removed while the daemon ran holds no snapshot; any other failure is a defect, named by Node.
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
          throw error
        }
        // Temporary files of an atomic write start with a dot; quarantined ones end in `.corrupt-<time>`.
        return names
          .filter((name) => name.endsWith(".json") && !name.startsWith("."))
          .map((name) => ({ bead: name.slice(0, -".json".length), read: () => fs.readFileSync(path.join(dir, name), "utf8") }))
      }
    })
  })

/** The test layer: snapshots in a map, kept as the JSON text a file would hold (so each load is a new copy). */
export const memorySnapshotStoreLayer = () =>
  Layer.sync(SnapshotStore, () => {
    const store = new Map<string, string>()
    return makeStore({
      write: (bead, text) => void store.set(bead, text),
      delete: (bead) => void store.delete(bead),
      entries: () => [...store].map(([bead, text]) => ({ bead, read: () => text }))
    })
  })
