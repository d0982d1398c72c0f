import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cause, Effect, Either, Exit, Layer, ManagedRuntime, Option } from "effect"
import { createActor, fromPromise, type Actor } from "xstate"
import { supervisorMachine } from "../../machines/supervisor.machine.js"
import { isFinalState } from "../../machines/agentSession.types.js"
import { liveLayer } from "../runtime/liveLayer.js"
import type { ResolvedConfig } from "../config/loadConfig.js"
import { RecordStore, writeFileAtomic } from "../records/RecordStore.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { buildSpec, type DispatchRequest } from "../sessions/buildSpec.js"
import { SessionRunner } from "../sessions/runSession.js"
import { runIsLive } from "../sessions/reconcile.js"
import { processStartTicks, supervisorAlive } from "../sessions/supervisorLiveness.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { checkOperatorInput, recordInput } from "../sessions/operatorInput.js"
import { expandHome, type WorkspacePaths } from "../workspace/paths.js"
import type { DispatchBody } from "../sessions/dispatchBody.js"
import { SNAPSHOT_VERSION, SnapshotStore, fileSnapshotStoreLayer, type SessionSnapshot } from "./SnapshotStore.js"
import { WorkQueue, fileWorkQueueLayer, type QueueItem } from "./WorkQueue.js"
import { availableMemoryMb } from "../system/memory.js"
import { ensureToken } from "./apiToken.js"
import { readDrainState, writeDrainState } from "./drainState.js"
import { acquireDaemonLock, type DaemonLock } from "./daemonLock.js"
import { quarantineCorruptStateFiles, snapshotBead, type QuarantinedFile } from "./stateFiles.js"
import { finalizeLostRun } from "../sessions/reconcile.js"
import {
  AlreadyCancelling,
  BeadBusy,
  DaemonStopping,
  InvalidRequest,
  NoRetryRequest,
  NoSession,
  NotRunning,
  RecordUnreadable,
  RepoMissing,
  RepoNotAllowed,
  SendFailed,
  ServiceUnavailable,
  UnknownBead,
  UnknownProfile,
  isDaemonError
} from "./errors.js"
import { localDate, memoryLine, type SessionView } from "../records/buildRecords.js"

/** A run record that is in the workspace but cannot be read (truncated, corrupt). */
export interface UnreadableRecord {
  readonly bead: string
  readonly file: string
  readonly unreadable: true
}

const unreadableRecord = (file: string): UnreadableRecord => ({ bead: path.basename(file, ".json"), file, unreadable: true })

/** Where the daemon reports what happens (the websocket feed); one observer for everything visible. */
export type DaemonEvents = (topic: "sessions" | "records" | "queue" | "daemon", type: string, data: unknown) => void

export interface DaemonOptions {
  readonly events?: DaemonEvents
  readonly config: ResolvedConfig
  readonly paths: WorkspacePaths
  readonly concurrency: number
  readonly quotas: Readonly<Record<string, number>>
  readonly log: (message: string, detail?: Record<string, unknown>) => void
}

interface LiveSession {
  readonly runner: SessionRunner
  readonly body: DispatchBody
}

type DaemonServices = Terminals | RecordStore | WorkQueue | SnapshotStore

/**
 * The supervisor process: a root supervisor actor admitting queued beads into
 * slots, a session actor per dispatched bead, their snapshots persisted on
 * every transition, and the operations the HTTP API exposes.
 */
export class Daemon {
  readonly sessions = new Map<string, LiveSession>()
  readonly supervisor: Actor<typeof supervisorMachine>
  readonly runtime: ManagedRuntime.ManagedRuntime<DaemonServices | Layer.Layer.Success<ReturnType<typeof liveLayer>>, never>
  readonly token: string
  readonly startedAt = Date.now()
  private readonly memoryTimer: NodeJS.Timeout
  private stopping = false
  private readonly lock: DaemonLock
  /** State files that did not decode at start-up, moved aside (shown by `/healthz`). */
  readonly quarantined: QuarantinedFile[]

  constructor(private readonly options: DaemonOptions) {
    const files = options.paths.daemon
    this.lock = acquireDaemonLock(files.lock)
    this.quarantined = [...quarantineCorruptStateFiles(files)]
    for (const q of this.quarantined) options.log("state file quarantined", { ...q })
    this.token = ensureToken(files.token, { operatorsGroup: options.config.operatorsGroup })
    this.runtime = ManagedRuntime.make(
      Layer.mergeAll(liveLayer(options.config, options.paths), fileWorkQueueLayer(files.queue), fileSnapshotStoreLayer(files.snapshots))
    )
    const claimNext = fromPromise<{ bead: string; profile: string; priority: number; retry: boolean } | null, { blocked: ReadonlyArray<string> }>(
      ({ input }) =>
        this.runtime.runPromise(
          Effect.flatMap(WorkQueue, (queue) => queue.claim({ blockedProfiles: input.blocked })).pipe(
            Effect.tapError((error) => Effect.sync(() => options.log("queue claim failed", { reason: error.reason })))
          )
        )
    )
    this.supervisor = createActor(supervisorMachine.provide({ actors: { claimNext } }), {
      input: {
        limits: { concurrency: options.concurrency, quotas: options.quotas, minFreeMemoryMb: options.config.minFreeMemoryMb },
        draining: readDrainState(files.drain)
      }
    })
    this.supervisor.on("admit", (event) => this.admit(event.item.bead))
    this.memoryTimer = setInterval(() => this.supervisor.send({ type: "MEMORY", freeMb: availableMemoryMb() }), 5_000)
    this.memoryTimer.unref()
  }

  /** Admitting begins once restore has reported every session it took over (the supervisor waits for START). */
  start(): void {
    this.supervisor.send({ type: "MEMORY", freeMb: availableMemoryMb() })
    this.supervisor.start()
    this.supervisor.send({ type: "START" })
  }

  /**
   * Runs a service effect for an operation. A refusal it fails with (a `DaemonError`) reaches the API as it
   * is; any other service failure (a queue or snapshot file that cannot be written, tmux gone) becomes
   * `ServiceUnavailable` naming its reason, instead of a FiberFailure the API could only call an internal error.
   */
  private async run<A, E>(effect: Effect.Effect<A, E, DaemonServices>): Promise<A> {
    const exit = await this.runtime.runPromiseExit(effect as Effect.Effect<A, E, never>)
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw Cause.squash(exit.cause)
    const error: unknown = failure.value
    if (isDaemonError(error)) throw error
    const reason = typeof (error as { reason?: unknown }).reason === "string" ? (error as { reason: string }).reason : String(error)
    throw new ServiceUnavailable({ reason })
  }

  /** The bead's session while it is not over (a finished one stays in the map until its snapshot is removed). */
  private liveSession(bead: string): LiveSession | undefined {
    const session = this.sessions.get(bead)
    return session === undefined || session.runner.view().final ? undefined : session
  }

  /** Checks a dispatch and queues it; the bead starts when the supervisor admits it. */
  async dispatch(body: DispatchBody): Promise<{ bead: string; priority: number; queued: number; draining: boolean }> {
    if (this.stopping) throw new DaemonStopping()
    const existing = this.liveSession(body.bead)
    if (existing !== undefined) throw new BeadBusy({ bead: body.bead, reason: { _tag: "Dispatched", state: existing.runner.view().state } })
    const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(body.bead)).pipe(Effect.orElseSucceed(() => null)))
    if (record !== null && runIsLive(record) && supervisorAlive(record.supervisor)) {
      throw new BeadBusy({ bead: body.bead, reason: { _tag: "SupervisedElsewhere", pid: record.supervisor.pid } })
    }
    if (!(body.agent in this.options.config.profiles)) {
      throw new UnknownProfile({ profile: body.agent, configured: Object.keys(this.options.config.profiles) })
    }
    const repo = path.resolve(expandHome(body.repo))
    let real: string
    try {
      real = fs.realpathSync(repo)
    } catch {
      throw new RepoMissing({ repo })
    }
    const roots = this.options.config.allowedRoots.flatMap((root) => {
      try {
        return [fs.realpathSync(expandHome(root))]
      } catch {
        return []
      }
    })
    if (!roots.some((root) => real === root || real.startsWith(root.endsWith("/") ? root : `${root}/`))) {
      throw new RepoNotAllowed({ repo: real, allowedRoots: this.options.config.allowedRoots })
    }
    const request = { ...body, repo: real }
    const runner = await this.sessionFor(request, undefined)
    // Queued first: a dispatch the queue cannot take creates nothing (no snapshot, no records, no runner).
    // An admission that comes before the runner starts waits in the actor's mailbox.
    let item: QueueItem
    try {
      item = await this.run(
        Effect.flatMap(WorkQueue, (queue) => queue.enqueue({ bead: body.bead, profile: body.agent, priority: body.priority, enqueuedAt: Date.now(), retry: false }))
      )
    } catch (error) {
      if (this.sessions.get(body.bead)?.runner === runner) this.sessions.delete(body.bead)
      throw error
    }
    runner.start()
    this.rememberRequest(request)
    this.supervisor.send({ type: "ENQUEUED" })
    this.options.events?.("queue", "queue.enqueued", { bead: item.bead, profile: item.profile, priority: item.priority, seq: item.seq, retry: item.retry })
    return { bead: body.bead, priority: body.priority, queued: item.seq, draining: this.supervisor.getSnapshot().context.draining }
  }

  /** The session actor of a dispatch: new, or taken over from its snapshot. */
  private async sessionFor(body: DispatchBody, restore: { snapshot: unknown; history: SessionSnapshot["history"] } | undefined): Promise<SessionRunner> {
    const request: DispatchRequest = {
      bead: body.bead,
      repo: body.repo,
      agent: body.agent,
      template: body.template,
      prompt: body.prompt,
      promptFile: undefined,
      title: body.title,
      acceptance: body.acceptance,
      command: body.command,
      overrides: {
        timeoutMs: body.timeoutSeconds === undefined ? undefined : body.timeoutSeconds * 1000,
        stallMs: body.stallSeconds === undefined ? undefined : body.stallSeconds * 1000,
        maxAttempts: body.maxRetries
      }
    }
    const built = await Effect.runPromise(Effect.either(buildSpec(this.options, request)))
    if (Either.isLeft(built)) throw new InvalidRequest({ problem: built.left.message })
    const spec = {
      ...built.right,
      supervisor: { pid: process.pid, procStart: processStartTicks(process.pid), host: os.hostname(), kind: "daemon" as const, startedAt: this.startedAt }
    }
    const runner = new SessionRunner(
      spec,
      this.runtime as never,
      {
        log: this.options.log,
        onState: (view, entry) => {
          this.onSessionState(body, view)
          const c = view.context
          // The log (the journal under systemd) tells each bead's story as the foreground CLI does.
          this.options.log("session state", {
            bead: body.bead,
            state: view.state,
            attempt: c.attempt,
            ...(c.outcome === null ? {} : { outcome: c.outcome }),
            ...(c.failureReason === null ? {} : { failure_reason: c.failureReason })
          })
          this.options.events?.("sessions", "session.state", {
            bead: body.bead,
            state: view.state,
            at: new Date(entry.at).toISOString(),
            attempt: c.attempt,
            attempt_id: c.attemptId,
            profile: body.agent,
            outcome: c.outcome,
            failure_reason: c.failureReason,
            decision: c.claim,
            waiting: c.waiting,
            will_retry: c.willRetry
          })
        },
        onRecords: (run, result) =>
          this.options.events?.("records", "records.written", {
            bead: run.bead,
            status: run.status,
            lifecycle_state: run.lifecycle_state,
            run_file: result.run_file,
            result_file: run.result_file,
            reason: result.reason
          }),
        onSnapshot: (r) => this.persist(body, r)
      },
      { admit: "external", ...(restore === undefined ? {} : { restore }) }
    )
    this.sessions.set(body.bead, { runner, body })
    return runner
  }

  /**
   * Takes over every unfinished session from its snapshot: the actor resumes
   * where it was, re-adopts its tmux session and transcript, and re-reads what
   * happened while no daemon ran (exit file, status file, signals). A session
   * holding a slot keeps it; a queued one stays queued.
   */
  async restore(): Promise<{ restored: ReadonlyArray<string>; refused: ReadonlyArray<string> }> {
    const { snapshots, refused } = await this.run(Effect.flatMap(SnapshotStore, (store) => store.loadAll))
    for (const error of refused) this.options.log("snapshot refused", { bead: error.bead, reason: error.reason })
    for (const q of this.quarantined) {
      const bead = snapshotBead(q, this.options.paths.daemon.snapshots)
      if (bead !== null) await this.endUnresumable(bead, q)
    }
    const restored: string[] = []
    for (const snapshot of snapshots) {
      const body = snapshot.request as DispatchBody
      const actor = snapshot.actor as { status?: string; value?: unknown; context?: { attempt?: number; attemptId?: string | null } }
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(snapshot.bead)).pipe(Effect.orElseSucceed(() => null)))
      // The records say this attempt finished (the daemon died between writing them and removing the snapshot): never run it again.
      // (Its `status` says done from the verification on; the lifecycle ends after cleaning, notifying and remembering.)
      const finished =
        record !== null &&
        isFinalState(record.lifecycle_state) &&
        !record.will_retry &&
        record.attempt_id === (actor.context?.attemptId ?? null) &&
        record.attempt === Math.max(1, actor.context?.attempt ?? 0)
      if (finished || actor.status === "done" || isFinalState(String(actor.value))) {
        // A finished session's snapshot that outlived it: nothing to restore.
        await this.run(Effect.flatMap(SnapshotStore, (store) => store.remove(snapshot.bead)).pipe(Effect.ignore))
        continue
      }
      try {
        const runner = await this.sessionFor(body, { snapshot: snapshot.actor, history: snapshot.history })
        runner.start()
        const state = runner.view().state
        if (state === "queued") await this.enqueue(body, runner.view().context.attempt > 0)
        else if (!["backoff", "cleaning", "notifying", "remembering", "settling"].includes(state)) {
          this.supervisor.send({ type: "ADOPTED", bead: body.bead, profile: body.agent })
        }
        restored.push(body.bead)
      } catch (error) {
        this.options.log("session not restored", { bead: snapshot.bead, reason: (error as Error).message })
      }
    }
    return { restored, refused: refused.map((error) => `${error.bead}: ${error.reason}`) }
  }

  /**
   * A bead whose snapshot was quarantined cannot be resumed: if its records say
   * it was under way, its tmux session is ended (no agent runs on unseen, and a
   * new dispatch cannot run beside it) and its records are finalized as failed,
   * saying why.
   */
  private async endUnresumable(bead: string, q: QuarantinedFile): Promise<void> {
    await this.run(Effect.flatMap(WorkQueue, (queue) => queue.remove(bead)).pipe(Effect.ignore))
    const run = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
    if (run === null || !runIsLive(run) || (run.supervisor.pid !== process.pid && supervisorAlive(run.supervisor))) return
    await this.run(Effect.flatMap(Terminals, (terminals) => terminals.kill(run.session_name)).pipe(Effect.ignore))
    const now = Date.now()
    const result = await this.run(Effect.flatMap(RecordStore, (store) => store.readResult(bead)).pipe(Effect.orElseSucceed(() => null)))
    const lost = finalizeLostRun(this.options.paths, run, result, now)
    const reason = `its snapshot ${q.file} was corrupt (${q.reason}; moved to ${q.moved_to}), so the daemon could not resume it: it ended the tmux session ${run.session_name}; ${lost.result.reason}`
    const withReason = <T extends { completion: unknown; evidence: ReadonlyArray<unknown> }>(record: T): T => {
      const decision = { ...(record.completion as object), detail: { ...((record.completion as { detail?: object }).detail ?? {}), reason } }
      return { ...record, completion: decision, evidence: [...record.evidence.slice(0, -1), decision] }
    }
    const final = { run: withReason(lost.run), result: { ...withReason(lost.result), reason } }
    await this.run(
      Effect.flatMap(RecordStore, (store) =>
        Effect.zipRight(store.write(final.run, final.result), store.appendMemory(localDate(now), memoryLine(final.run, final.result)))
      ).pipe(Effect.catchAll((error) => Effect.sync(() => this.options.log("records of an unresumable session not finalized", { bead, reason: error.reason }))))
    )
    this.options.log("session ended: its snapshot was corrupt", { bead, session: run.session_name, moved_to: q.moved_to })
    this.options.events?.("records", "records.written", { bead, status: final.run.status, lifecycle_state: final.run.lifecycle_state, reason })
  }

  private async enqueue(body: DispatchBody, retry: boolean): Promise<QueueItem> {
    const item = await this.run(
      Effect.flatMap(WorkQueue, (queue) => queue.enqueue({ bead: body.bead, profile: body.agent, priority: body.priority, enqueuedAt: Date.now(), retry }))
    )
    this.supervisor.send({ type: "ENQUEUED" })
    this.options.events?.("queue", "queue.enqueued", { bead: item.bead, profile: item.profile, priority: item.priority, seq: item.seq, retry: item.retry })
    return item
  }

  private admit(bead: string): void {
    this.options.events?.("queue", "queue.admitted", { bead })
    const session = this.sessions.get(bead)
    if (session === undefined || session.runner.view().state !== "queued") {
      // Cancelled (or gone) while it waited: give the slot back.
      this.supervisor.send({ type: "RELEASED", bead })
      return
    }
    session.runner.admit()
  }

  /** The supervisor follows each session: a retry comes back through the queue, the slot is freed in cleaning. */
  private onSessionState(body: DispatchBody, view: SessionView): void {
    if (view.state === "queued" && view.context.attempt > 0) void this.enqueue(body, true)
    if (view.state === "cleaning") this.supervisor.send({ type: "RELEASED", bead: body.bead })
    if (view.final) {
      this.supervisor.send({ type: "RELEASED", bead: body.bead })
      const session = this.sessions.get(body.bead)
      clearTimeout(this.persistTimers.get(body.bead))
      this.persistTimers.delete(body.bead)
      this.persistedStates.delete(body.bead)
      // Saves and the removal are synchronous (see persistNow): once the records are flushed, nothing can
      // write this snapshot again, so no ordering of its own is needed.
      void session?.runner.flush().then(() => {
        // A new dispatch of the bead since then has saved its own snapshot: that one stays.
        const current = this.sessions.get(body.bead)
        if (current === undefined || current === session) this.runtime.runSync(Effect.flatMap(SnapshotStore, (store) => store.remove(body.bead)).pipe(Effect.ignore))
        if (this.sessions.get(body.bead) === session) this.sessions.delete(body.bead)
      })
    }
  }

  private readonly persistedStates = new Map<string, string>()
  private readonly persistTimers = new Map<string, NodeJS.Timeout>()

  /**
   * Saves the session's snapshot: at once on a new state; a change within a
   * state (the machine's clock moving with the agent's output) at most every
   * 5 s, since a restore re-reads the agent's files anyway.
   */
  private persist(body: DispatchBody, runner: SessionRunner): void {
    if (this.stopping) return
    const state = runner.view().state
    // A finished session's snapshot is removed, not saved (nothing is left to restore).
    if (runner.view().final) return
    if (this.persistedStates.get(body.bead) === state) {
      if (!this.persistTimers.has(body.bead)) {
        const timer = setTimeout(() => {
          this.persistTimers.delete(body.bead)
          this.persistNow(body, runner)
        }, 5_000)
        timer.unref()
        this.persistTimers.set(body.bead, timer)
      }
      return
    }
    this.persistedStates.set(body.bead, state)
    this.persistNow(body, runner)
  }

  private persistNow(body: DispatchBody, runner: SessionRunner): void {
    if (this.stopping || !this.sessions.has(body.bead)) return
    const snapshot = {
      version: SNAPSHOT_VERSION,
      bead: body.bead,
      request: body,
      actor: runner.actor.getPersistedSnapshot(),
      history: runner.history,
      savedAt: Date.now()
    }
    // Saved before this tick ends, so before the new state's effects can change anything on disk: a
    // daemon killed at any moment restarts from a snapshot never behind the records and the attempt's files.
    try {
      this.runtime.runSync(
        Effect.flatMap(SnapshotStore, (store) => store.save(snapshot)).pipe(
          Effect.catchAll((error) => Effect.sync(() => this.options.log("snapshot not saved", { bead: body.bead, reason: error.reason })))
        )
      )
    } catch (error) {
      this.options.log("snapshot not saved", { bead: body.bead, reason: (error as Error).message })
    }
  }

  async cancel(bead: string): Promise<{ bead: string; cancelled: true }> {
    const session = this.liveSession(bead)
    if (session === undefined) {
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
      if (record === null) throw new UnknownBead({ bead })
      throw new NotRunning({ bead, ended: record.outcome ?? record.status })
    }
    if (session.runner.view().context.cancelRequested) throw new AlreadyCancelling({ bead })
    if (await this.run(Effect.flatMap(WorkQueue, (queue) => queue.remove(bead)))) this.options.events?.("queue", "queue.removed", { bead })
    session.runner.cancel("cancelled through the API")
    return { bead, cancelled: true }
  }

  /** Dispatches a finished bead again with the request it was dispatched with. */
  async retry(bead: string): Promise<{ bead: string; priority: number; queued: number; draining: boolean }> {
    if (this.liveSession(bead) !== undefined) throw new BeadBusy({ bead, reason: { _tag: "StillRunning" } })
    const file = path.join(this.options.paths.daemon.requests, `${bead}.json`)
    let body: DispatchBody
    try {
      body = JSON.parse(fs.readFileSync(file, "utf8")) as DispatchBody
    } catch {
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
      if (record === null) throw new UnknownBead({ bead })
      throw new NoRetryRequest({ bead })
    }
    return this.dispatch(body)
  }

  /** Keeps each dispatch request, so `retry` can send the same bead again. */
  private rememberRequest(body: DispatchBody): void {
    const file = path.join(this.options.paths.daemon.requests, `${body.bead}.json`)
    writeFileAtomic(file, JSON.stringify(body))
  }

  async input(
    bead: string,
    given: string | undefined,
    keys: ReadonlyArray<string>,
    enter: boolean,
    via: "api" | "stream" = "api"
  ): Promise<{ bead: string; sent: true }> {
    const session = this.liveSession(bead)
    if (session === undefined) {
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
      if (record === null) throw new UnknownBead({ bead })
      // As for cancel: the bead exists, its session does not run.
      throw new NotRunning({ bead, ended: record.outcome ?? record.status })
    }
    const checked = checkOperatorInput(given, keys)
    if (!checked.ok) throw new InvalidRequest({ problem: checked.problem })
    const text = checked.text
    const name = sessionNameFor(bead)
    await this.run(
      Effect.gen(function* () {
        const terminals = yield* Terminals
        if (text !== undefined && text !== "") yield* terminals.sendText(name, text, enter)
        else if (enter && keys.length === 0) yield* terminals.sendText(name, "", true)
        if (keys.length > 0) yield* terminals.sendKeys(name, keys)
      }).pipe(Effect.mapError((error) => new SendFailed({ session: name, reason: error.reason })))
    )
    const attemptId = session.runner.view().context.attemptId
    if (attemptId !== null) recordInput(this.options.paths, bead, attemptId, { text, keys, enter, via })
    return { bead, sent: true }
  }

  signal(bead: string, status: string, summary: string | null, attemptId: string | null): { bead: string; accepted: true } {
    if (!this.sessions.has(bead)) throw new NoSession({ bead })
    fs.mkdirSync(this.options.paths.watch, { recursive: true })
    fs.appendFileSync(
      this.options.paths.signalsFile(bead),
      `${JSON.stringify({ bead, attempt_id: attemptId, status, summary, source: "signal", at: Date.now(), pid: process.pid })}\n`
    )
    return { bead, accepted: true }
  }

  /** Every run record; one that cannot be read is listed as unreadable, never left out. */
  async records(): Promise<{ sessions: ReadonlyArray<RunRecord>; unreadable: ReadonlyArray<UnreadableRecord> }> {
    const listed = await this.run(Effect.flatMap(RecordStore, (store) => store.listRuns))
    return { sessions: listed.runs, unreadable: listed.unreadable.map(unreadableRecord) }
  }

  async show(bead: string): Promise<{ run: RunRecord; result: ResultRecord | null }> {
    const read = await this.run(
      Effect.flatMap(RecordStore, (store) => Effect.all([store.readRun(bead), store.readResult(bead)])).pipe(
        Effect.mapError((error) => new RecordUnreadable({ bead, file: error.file, reason: error.reason }))
      )
    )
    const [run, result] = read
    if (run === null) throw new UnknownBead({ bead })
    return { run, result }
  }

  /** The transcript of a bead's current attempt, for the terminal stream. */
  transcriptOf(bead: string): string | null {
    return this.sessions.get(bead)?.runner.view().context.launch?.transcriptPath ?? null
  }

  async queue(): Promise<ReadonlyArray<QueueItem>> {
    return this.run(Effect.flatMap(WorkQueue, (queue) => queue.list))
  }

  /** Drain mode: nothing new is admitted (queued beads wait) while running sessions go on, for maintenance. */
  drain(on: boolean): { draining: boolean } {
    writeDrainState(this.options.paths.daemon.drain, on)
    this.supervisor.send({ type: "DRAIN", on })
    this.options.events?.("daemon", on ? "daemon.draining" : "daemon.admitting", {})
    return { draining: on }
  }

  health() {
    const snapshot = this.supervisor.getSnapshot()
    return {
      ok: true,
      pid: process.pid,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      sessions: this.sessions.size,
      running: snapshot.context.running.length,
      concurrency: snapshot.context.limits.concurrency,
      draining: snapshot.context.draining,
      quarantined: this.quarantined
    }
  }

  /**
   * Stops supervising: the session actors stop and their snapshots stay, the
   * agents keep running in tmux for the next start to re-adopt.
   */
  async stop(): Promise<void> {
    this.stopping = true
    clearInterval(this.memoryTimer)
    this.supervisor.stop()
    await Promise.all([...this.sessions.values()].map((session) => session.runner.detach()))
    fs.rmSync(this.options.paths.daemon.info, { force: true })
    this.lock.release()
    await this.runtime.dispose()
  }
}
