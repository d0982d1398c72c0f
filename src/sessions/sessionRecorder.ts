import type { InspectionEvent } from "xstate"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { SessionContext } from "../../machines/agentSession.types.js"
import { buildRecords, flattenState, type HistoryEntry, type SessionView } from "../records/buildRecords.js"
import { RecordStore } from "../records/RecordStore.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { expandHome } from "../workspace/paths.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import type { SessionServices } from "./sessionActors.js"
import type { EffectRunner } from "./effectRunner.js"

/** What a session actor's snapshot offers the recorder (a child's, seen by the root's observer, or a lone actor's). */
export interface ObservedSnapshot {
  readonly value: unknown
  readonly context: SessionContext
  hasTag(tag: string): boolean
}

export interface SessionObserver {
  /** A new state was entered. */
  readonly onState?: (view: SessionView, entry: HistoryEntry) => void
  /** A signal was ignored (stale attempt, over session), with why. */
  readonly onIgnored?: (reason: string, signal: unknown) => void
  readonly log?: (message: string, detail?: Record<string, unknown>) => void
  /** Both records reached the disk. */
  readonly onRecords?: (run: RunRecord, result: ResultRecord) => void
  /** Every inspection event of the session's actor (the foreground CLI keeps its machine history with it). */
  readonly inspect?: (event: InspectionEvent) => void
}

/** The session as the records see it: its flattened state, whether it is over, its context. */
export const viewOf = (snapshot: ObservedSnapshot): SessionView => ({
  state: flattenState(snapshot.value),
  final: snapshot.hasTag("final"),
  context: snapshot.context
})

/**
 * Records one bead's session from its snapshots: the state history, and the
 * records rewritten atomically, in order, on entering every state (changes
 * within a state are coalesced). The only writer of the bead's records while
 * it runs, whoever runs the actor.
 */
export class SessionRecorder {
  readonly history: HistoryEntry[] = []
  private snapshot: ObservedSnapshot | null = null
  private lastState = ""
  private ignoredSeen = 0
  private writing: Promise<void> = Promise.resolve()
  private writePending = false
  private lastWritten = ""
  private readonly repoPath: string

  constructor(
    readonly spec: DispatchSpec,
    private readonly runtime: EffectRunner<SessionServices>,
    private readonly observer: SessionObserver = {},
    restoredHistory: ReadonlyArray<HistoryEntry> = []
  ) {
    const resolved = path.resolve(expandHome(spec.repo))
    this.repoPath = fs.existsSync(resolved) ? fs.realpathSync(resolved) : resolved
    this.history.push(...restoredHistory)
    this.lastState = this.history[this.history.length - 1]?.state ?? ""
  }

  /** The session as last observed. */
  view(): SessionView {
    if (this.snapshot === null) throw new Error(`the session of ${this.spec.bead} has not been observed yet`)
    return viewOf(this.snapshot)
  }

  records() {
    return buildRecords(this.spec, this.view(), this.history, Date.now(), this.repoPath)
  }

  /** Resolves once every record write requested so far is on disk. */
  flush(): Promise<void> {
    return this.writing
  }

  /** Takes in a new snapshot; says whether it entered a new state. */
  observe(snapshot: ObservedSnapshot): { readonly entered: boolean; readonly view: SessionView } {
    this.snapshot = snapshot
    const view = viewOf(snapshot)
    const entered = view.state !== this.lastState
    if (entered) {
      this.lastState = view.state
      const entry = { state: view.state, at: Date.now(), attempt: Math.max(1, view.context.attempt) }
      this.history.push(entry)
      this.observer.onState?.(view, entry)
    }
    const ignored = view.context.ignored
    for (; this.ignoredSeen < ignored.length; this.ignoredSeen++) {
      const item = ignored[this.ignoredSeen]!
      this.observer.log?.("signal ignored", { reason: item.reason, signal: item.signal })
      this.observer.onIgnored?.(item.reason, item.signal)
    }
    if (entered) this.writeNow()
    else this.writeSoon()
    return { entered, view }
  }

  /** A new state: its records are built now and written in order, so every state reaches the disk. */
  private writeNow(): void {
    const records = this.records()
    this.writing = this.writing.then(() => this.write(records))
  }

  /**
   * A change within a state (output seen, a signal ignored): coalesced with any
   * write already waiting, and skipped when the records would not change (a
   * chatty agent's output moves the machine's clock, not its records).
   */
  private writeSoon(): void {
    if (this.writePending) return
    this.writePending = true
    this.writing = this.writing.then(() => {
      this.writePending = false
      const records = this.records()
      if (this.fingerprint(records) === this.lastWritten) return
      return this.write(records)
    })
  }

  private fingerprint({ run, result }: ReturnType<SessionRecorder["records"]>): string {
    return JSON.stringify([{ ...run, updated_at: null }, { ...result, updated_at: null }])
  }

  private write(records: ReturnType<SessionRecorder["records"]>): Promise<void> {
    const { run, result } = records
    this.lastWritten = this.fingerprint(records)
    return this.runtime.runPromise(
      Effect.flatMap(RecordStore, (store) => store.write(run, result)).pipe(
        Effect.tap(() => Effect.sync(() => this.observer.onRecords?.(run, result))),
        Effect.catchAll((error) => Effect.sync(() => this.observer.log?.("record write failed", { file: error.file, reason: error.message })))
      )
    )
  }
}
