import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, type ManagedRuntime } from "effect"
import { createActor, type Actor } from "xstate"
import type { Outcome } from "../../machines/agentSession.types.js"
import { buildRecords, flattenState, type HistoryEntry, type SessionView } from "../records/buildRecords.js"
import { RecordStore } from "../records/RecordStore.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { expandHome } from "../workspace/paths.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import { provideSession, type SessionServices } from "./sessionActors.js"

export interface SessionObserver {
  /** A new state was entered. */
  readonly onState?: (view: SessionView, entry: HistoryEntry) => void
  /** A signal was ignored (stale attempt, over session), with why. */
  readonly onIgnored?: (reason: string, signal: unknown) => void
  readonly log?: (message: string, detail?: Record<string, unknown>) => void
  /** Every snapshot, for persistence (the daemon's SnapshotStore). */
  readonly onSnapshot?: (runner: SessionRunner) => void
  /** Both records reached the disk. */
  readonly onRecords?: (run: RunRecord, result: ResultRecord) => void
}

export interface RunnerOptions {
  /** `auto`: a queued session starts at once (the foreground CLI); `external`: the supervisor admits it. */
  readonly admit: "auto" | "external"
  /** Take over a session from its persisted snapshot (a daemon restart) instead of starting a new one. */
  readonly restore?: { readonly snapshot: unknown; readonly history: ReadonlyArray<HistoryEntry> }
}

/**
 * Runs one bead's session actor and observes it: the state history, and the
 * records rewritten atomically, in order, on entering every state (changes
 * within a state are coalesced).
 * This observer is the only writer of the bead's records while it runs.
 */
export class SessionRunner {
  readonly history: HistoryEntry[] = []
  readonly actor: Actor<ReturnType<typeof provideSession>>
  readonly finished: Promise<Outcome>
  private lastState: string = ""
  private ignoredSeen = 0
  private writing: Promise<void> = Promise.resolve()
  private writePending = false
  private readonly repoPath: string

  /** Set when the supervisor goes away (daemon stop): the agent keeps running and is not killed. */
  private detaching = false

  constructor(
    readonly spec: DispatchSpec,
    private readonly runtime: ManagedRuntime.ManagedRuntime<SessionServices, never>,
    private readonly observer: SessionObserver = {},
    private readonly options: RunnerOptions = { admit: "auto" }
  ) {
    const resolved = path.resolve(expandHome(spec.repo))
    this.repoPath = fs.existsSync(resolved) ? fs.realpathSync(resolved) : resolved
    const log = observer.log ?? (() => undefined)
    const logic = provideSession(spec, runtime, { records: () => this.records(), log, detaching: () => this.detaching })
    const input = { bead: spec.bead, policy: spec.profile.policy }
    if (options.restore !== undefined) {
      this.history.push(...options.restore.history)
      this.lastState = this.history[this.history.length - 1]?.state ?? ""
      this.actor = createActor(logic, { input, snapshot: options.restore.snapshot as never })
    } else this.actor = createActor(logic, { input })
    this.finished = new Promise((resolve, reject) => {
      this.actor.subscribe({
        next: (snapshot) => {
          this.observe()
          if (snapshot.status === "done") this.flush().then(() => resolve(snapshot.output?.outcome ?? "failed"), reject)
        },
        error: (error) => this.flush().then(() => reject(error), reject)
      })
    })
  }

  /** The session as the records see it now. */
  view(): SessionView {
    const snapshot = this.actor.getSnapshot()
    return { state: flattenState(snapshot.value), final: snapshot.hasTag("final"), context: snapshot.context }
  }

  records() {
    return buildRecords(this.spec, this.view(), this.history, Date.now(), this.repoPath)
  }

  start(): this {
    // Starting notifies the subscription with the initial snapshot: the observer sees `queued` from there.
    this.actor.start()
    // A restored actor has lost its timers (they are not persisted): re-arm them from their absolute times.
    if (this.options.restore !== undefined) this.actor.send({ type: "RESUME", at: Date.now() })
    return this
  }

  cancel(reason = "cancelled by the operator"): void {
    this.actor.send({ type: "CANCEL", at: Date.now(), reason })
  }

  /** Resolves once every record write requested so far is on disk. */
  flush(): Promise<void> {
    return this.writing
  }

  private observe(): void {
    const view = this.view()
    const entered = view.state !== this.lastState
    if (entered) {
      this.lastState = view.state
      const entry = { state: view.state, at: Date.now(), attempt: Math.max(1, view.context.attempt) }
      this.history.push(entry)
      this.observer.onState?.(view, entry)
      // In the foreground nothing else admits work: a queued session starts at once.
      if (view.state === "queued" && this.options.admit === "auto") this.actor.send({ type: "ADMIT", at: Date.now() })
    }
    const ignored = view.context.ignored
    for (; this.ignoredSeen < ignored.length; this.ignoredSeen++) {
      const item = ignored[this.ignoredSeen]!
      this.observer.log?.("signal ignored", { reason: item.reason, signal: item.signal })
      this.observer.onIgnored?.(item.reason, item.signal)
    }
    if (entered) this.writeNow()
    else this.writeSoon()
    this.observer.onSnapshot?.(this)
  }

  /** The supervisor lets go of the session (daemon stop): the actor stops, the agent runs on in tmux. */
  detach(): Promise<void> {
    this.detaching = true
    this.actor.stop()
    return this.flush()
  }

  admit(): void {
    this.actor.send({ type: "ADMIT", at: Date.now() })
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

  private lastWritten = ""

  private fingerprint({ run, result }: ReturnType<SessionRunner["records"]>): string {
    return JSON.stringify([{ ...run, updated_at: null }, { ...result, updated_at: null }])
  }

  private write(records: ReturnType<SessionRunner["records"]>): Promise<void> {
    const { run, result } = records
    this.lastWritten = this.fingerprint(records)
    return this.runtime.runPromise(
      Effect.flatMap(RecordStore, (store) => store.write(run, result)).pipe(
        Effect.tap(() => Effect.sync(() => this.observer.onRecords?.(run, result))),
        Effect.catchAll((error) => Effect.sync(() => this.observer.log?.("record write failed", { file: error.file, reason: error.reason })))
      )
    )
  }
}
