import { Context, Effect, Layer } from "effect"
import type { HistoryEntry } from "../records/buildRecords.js"
import type { DispatchBody } from "../sessions/dispatchBody.js"
import { SNAPSHOT_VERSION, SnapshotStore } from "./SnapshotStore.js"
import { DaemonSettings } from "./resources.js"
import { runnerOf, type EffectRunner } from "../sessions/effectRunner.js"

/** What a snapshot is made from: the bead's request, its actor's persisted snapshot, its state history. */
export interface PersistSource {
  readonly body: DispatchBody
  readonly state: string
  readonly persisted: () => unknown
  readonly history: ReadonlyArray<HistoryEntry>
}

/**
 * Saves one snapshot per bead behind `SnapshotStore`: at once on a new state;
 * a change within a state (the machine's clock moving with the agent's
 * output) at most every `coalesceMs`, since a restore re-reads the agent's
 * files anyway. Saves are synchronous: a daemon killed at any moment restarts
 * from a snapshot never behind the records and the attempt's files (the
 * session's effects start a tick after the state that runs them is entered).
 */
export class SnapshotPersistence {
  private readonly savedStates = new Map<string, string>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private stopped = false

  constructor(
    private readonly runtime: EffectRunner<SnapshotStore>,
    private readonly log: (message: string, detail?: Record<string, unknown>) => void,
    private readonly coalesceMs = 5_000
  ) {}

  /** A new snapshot of a live (not final) session. `current` says whether the source is still the bead's session when a delayed save runs. */
  persist(source: PersistSource, current: () => boolean): void {
    if (this.stopped) return
    const bead = source.body.bead
    if (this.savedStates.get(bead) === source.state) {
      if (!this.timers.has(bead)) {
        const timer = setTimeout(() => {
          this.timers.delete(bead)
          if (current()) this.saveNow(source)
        }, this.coalesceMs)
        timer.unref()
        this.timers.set(bead, timer)
      }
      return
    }
    this.savedStates.set(bead, source.state)
    this.saveNow(source)
  }

  private saveNow(source: PersistSource): void {
    if (this.stopped) return
    const snapshot = {
      version: SNAPSHOT_VERSION,
      bead: source.body.bead,
      request: source.body,
      actor: source.persisted(),
      history: source.history,
      savedAt: Date.now()
    }
    this.runtime.runSync(
      Effect.flatMap(SnapshotStore, (store) => store.save(snapshot)).pipe(
        Effect.catchAll((error) => Effect.sync(() => this.log("snapshot not saved", { bead: source.body.bead, reason: error.message }))),
        Effect.catchAllDefect((defect) => Effect.sync(() => this.log("snapshot not saved", { bead: source.body.bead, reason: String(defect) })))
      )
    )
  }

  /** The session is over: no save is pending any more (its snapshot is removed once its records are on disk). */
  forget(bead: string): void {
    clearTimeout(this.timers.get(bead))
    this.timers.delete(bead)
    this.savedStates.delete(bead)
  }

  remove(bead: string): void {
    this.runtime.runSync(Effect.flatMap(SnapshotStore, (store) => store.remove(bead)).pipe(Effect.ignore))
  }

  /** Daemon stop: the snapshots stay as they are for the next start. */
  stop(): void {
    this.stopped = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }
}

/** The daemon's snapshot persistence, as a service: stopped (no save after it) when its layer ends. */
export class SnapshotSaver extends Context.Tag("warden/SnapshotSaver")<SnapshotSaver, SnapshotPersistence>() {}

export const snapshotSaverLayer = Layer.scoped(
  SnapshotSaver,
  Effect.gen(function* () {
    const { log } = yield* DaemonSettings
    const runtime = yield* Effect.runtime<SnapshotStore>()
    return yield* Effect.acquireRelease(
      Effect.sync(() => new SnapshotPersistence(runnerOf(runtime), log)),
      (persistence) => Effect.sync(() => persistence.stop())
    )
  })
)
