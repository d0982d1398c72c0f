import * as os from "node:os"
import * as path from "node:path"
import { Cause, Effect, Either, Exit, Option } from "effect"
import { createActor, fromPromise, waitFor, type Actor, type AnyActorLogic, type AnyActorRef, type InspectionEvent } from "xstate"
import type { ArgusCycle } from "../../machines/argus.machine.js"
import { summarizeCycle, type ArgusWorld } from "./argusActors.js"
import { supervisorMachine, type AdmittedItem } from "../../machines/supervisor.machine.js"
import type { ResolvedConfig } from "../config/loadConfig.js"
import { RecordStore } from "../records/RecordStore.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { buildSpec } from "../sessions/buildSpec.js"
import { sessionChildLogic, type SessionEntry, type SessionServices } from "../sessions/sessionActors.js"
import type { EffectRunner } from "../sessions/effectRunner.js"
import { appendSignalLine } from "../sessions/signalLines.js"
import { SessionRecorder, type ObservedSnapshot } from "../sessions/sessionRecorder.js"
import type { DispatchSpec } from "../sessions/dispatchSpec.js"
import { runIsLive } from "../sessions/reconcile.js"
import { processStartTicks, supervisorAlive } from "../sessions/supervisorLiveness.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { checkOperatorInput, recordInput } from "../sessions/operatorInput.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { requestOfBody, type DispatchBody } from "../sessions/dispatchBody.js"
import { SnapshotStore } from "./SnapshotStore.js"
import { WorkQueue, type QueueItem } from "./WorkQueue.js"
import { DispatchRequests } from "./DispatchRequests.js"
import { availableMemoryMb } from "../system/memory.js"
import { readDrainState, writeDrainState } from "./drainState.js"
import { snapshotBead, type QuarantinedFile } from "./stateFiles.js"
import {
  AlreadyCancelling,
  BeadBusy,
  DaemonStopping,
  InvalidRequest,
  NoRetryRequest,
  NoSession,
  NotRunning,
  RecordUnreadable,
  SendFailed,
  ServiceUnavailable,
  UnknownBead,
  ArgusDisabled,
  NoHistory,
  NoTranscript,
  isDaemonError
} from "./errors.js"
import type { HistoryEntry, SessionView } from "../records/buildRecords.js"
import { MachineEventSource, beadOfActor, type MachineEvent } from "./machineEvents.js"
import { MachineHistory } from "./machineHistory.js"
import { SnapshotPersistence } from "./snapshotPersistence.js"
import { followSession, type FollowedSession } from "./sessionSlots.js"
import { StallWatch } from "./stallWatch.js"
import { listTemplates, readHistory, readMemory, readTranscript } from "./sessionFiles.js"
import { RecentFailures } from "./recentFailures.js"
import { feedOfRootEmitted, feedOfRootEvent, recordsWrittenData, sessionStateData } from "./treeFeed.js"
import { checkDispatchTarget } from "./dispatchChecks.js"
import { ServiceSupervision } from "./serviceSupervision.js"
import type { ServiceConfig } from "../config/schema.js"
import { endUnresumable, endUnsupervisable, requestOfSnapshot, snapshotOutlivedSession } from "./restoreChecks.js"

/** A run record that is in the workspace but cannot be read (truncated, corrupt). */
export interface UnreadableRecord {
  readonly bead: string
  readonly file: string
  readonly unreadable: true
}

const unreadableRecord = (file: string): UnreadableRecord => ({ bead: path.basename(file, ".json"), file, unreadable: true })

/** Where the daemon reports what happens (the websocket feed); one observer for everything visible. */
export type DaemonEvents = (topic: "sessions" | "records" | "queue" | "daemon" | "machines" | "services" | "argus", type: string, data: unknown) => void

export interface DaemonOptions {
  readonly events?: DaemonEvents
  /** Where alerts go (the configured channels): a failed service, Argus's alerts. */
  readonly alert?: (problem: string, text: string) => void
  readonly config: ResolvedConfig
  readonly paths: WorkspacePaths
  readonly concurrency: number
  readonly quotas: Readonly<Record<string, number>>
  readonly log: (message: string, detail?: Record<string, unknown>) => void
  /** Every inspection event of the tree, also in `@statelyai/inspect`'s shape, when `statelyInspector` is configured. */
  readonly inspection?: (event: InspectionEvent) => void
}

/** A bead the tree supervises: its request and spec, its recorder, and its child actor once spawned. */
interface LiveSession {
  readonly body: DispatchBody
  readonly spec: DispatchSpec
  readonly recorder: SessionRecorder
  /** Its slot and queue place, as the observer follows them. */
  readonly slot: FollowedSession
  /** The child actor, known from its first snapshot. */
  ref: AnyActorRef | null
  over: boolean
}

/** What the daemon runs its effects with: the sessions' services and its own stores. */
export type DaemonServices = SessionServices | WorkQueue | SnapshotStore | DispatchRequests

/**
 * The supervisor process: one actor tree (the root supervisor admitting
 * queued beads into slots, a child session actor per dispatched bead), one
 * observer of everything the tree does (records, snapshots, slots, the feed,
 * the log, each bead's machine history), and the operations the HTTP API
 * exposes.
 */
export class Daemon {
  readonly sessions = new Map<string, LiveSession>()
  /** The root of the actor tree. */
  readonly supervisor: Actor<typeof supervisorMachine>
  readonly startedAt = Date.now()
  private readonly memoryTimer: NodeJS.Timeout
  private stopping = false

  private readonly machineEvents = new MachineEventSource()
  /** A session stalled or waiting for input as long as Argus's rules alert at wakes Argus then. */
  private readonly stallWatch: StallWatch
  /** Failed attempts of the last hour, by reason: one of Argus's observations. */
  private readonly failures = new RecentFailures(60 * 60 * 1000)
  /** The history folder exists (made at the first machine event, not at every one). */
  private readonly machineHistory: MachineHistory
  /** The supervised services: children of the same root (`service:<name>`). */
  readonly services: ServiceSupervision

  /**
   * Built by `supervisionLayer` (the workspace lock held, the state files checked and the corrupt ones
   * moved aside as `quarantined`, the stores chosen by the config) on the process's one runtime.
   */
  constructor(
    private readonly options: DaemonOptions,
    private readonly runtime: EffectRunner<DaemonServices>,
    /** Saves each live session's snapshot (one per bead, behind `SnapshotStore`). */
    private readonly persistence: SnapshotPersistence,
    /** State files that did not decode at start-up, moved aside (shown by `/healthz`). */
    readonly quarantined: ReadonlyArray<QuarantinedFile>,
    /** The service machine with its effects, and each configured service's policy (its input). */
    private readonly serviceLogic: {
      readonly logic: AnyActorLogic
      readonly policyOf: (name: string, config: ServiceConfig) => Record<string, unknown>
      /** Stops, with the daemon, the services that do not outlive it. */
      readonly stopWithDaemon: (running: ReadonlyArray<{ readonly name: string; readonly pid: number | null }>) => Promise<void>
    } | null = null,
    /** Argus, when the config enables it: its logic made from what it may see and do of this daemon, and its input. */
    private readonly argusOf: { readonly logic: (world: ArgusWorld) => AnyActorLogic; readonly input: Readonly<Record<string, unknown>> } | null = null
  ) {
    const files = options.paths.daemon
    const claimNext = fromPromise<AdmittedItem | null, { blocked: ReadonlyArray<string> }>(
      ({ input }) =>
        this.runtime.runPromise(
          Effect.flatMap(WorkQueue, (queue) => queue.claim({ blockedProfiles: input.blocked })).pipe(
            Effect.map((item) => (item === null ? null : { ...item, at: Date.now() })),
            Effect.tapError((error) => Effect.sync(() => options.log("queue claim failed", { reason: error.message })))
          )
        )
    )
    const lookup = (bead: string): SessionEntry => {
      const session = this.sessions.get(bead)
      if (session === undefined) throw new Error(`no session of ${bead} is supervised`)
      return { spec: session.spec, hooks: { records: () => session.recorder.records(), log: options.log, detaching: () => this.stopping } }
    }
    this.machineHistory = new MachineHistory(options.paths, options.log)
    this.stallWatch = new StallWatch(options.config.argus.stalledSeconds * 1000, (bead, state) => {
      options.log("a session stalled too long: Argus looks now", { bead, state })
      this.supervisor.system.get("argus")?.send({ type: "CYCLE", at: Date.now() })
    })
    // Made before the root: the root's inspection reaches it from the root's creation on.
    this.services = new ServiceSupervision(
      () => this.supervisor,
      serviceLogic === null ? {} : options.config.services,
      serviceLogic?.policyOf ?? (() => ({})),
      (type, data) => this.options.events?.("services", type, data),
      options.log,
      (name, reason) => {
        this.options.alert?.(`service:${name}`, `warden: service ${name} failed: ${reason}`)
        // An important event: Argus looks at once rather than at its next interval.
        this.supervisor.system.get("argus")?.send({ type: "CYCLE", at: Date.now() })
      }
    )
    this.supervisor = createActor(
      supervisorMachine.provide({
        actors: {
          claimNext,
          session: sessionChildLogic(lookup, this.runtime),
          ...(serviceLogic === null ? {} : { service: serviceLogic.logic }),
          ...(argusOf === null ? {} : { argus: argusOf.logic(this.argusWorld()) })
        }
      }),
      {
        input: {
          limits: { concurrency: options.concurrency, quotas: options.quotas, minFreeMemoryMb: options.config.minFreeMemoryMb },
          draining: readDrainState(files.drain)
        },
        systemId: "supervisor",
        inspect: (event) => this.observe(event)
      }
    )
    this.supervisor.on("*", (emitted) => {
      const item = feedOfRootEmitted(emitted)
      if (item !== null) this.options.events?.(item.topic, item.type, item.data)
    })
    this.supervisor.on("spawnRefused", (event) => options.log("a second session of a live bead was refused", { bead: event.bead }))
    this.supervisor.on("sessionFailed", (event) => this.sessionFailed(event.bead, event.error))
    this.supervisor.on("serviceFailed", (event) =>
      options.log("service actor failed: no longer supervised until the daemon restarts", { service: event.name, reason: String(event.error) })
    )
    // Started at once: it waits in `starting` (admitting nothing) until restore has put back every session.
    this.supervisor.start()
    this.memoryTimer = setInterval(() => this.supervisor.send({ type: "MEMORY", freeMb: availableMemoryMb() }), 5_000)
    this.memoryTimer.unref()
  }

  /** Admitting begins once restore has reported every session it took over (the supervisor waits for START). */
  start(restored: ReadonlyArray<string>): void {
    this.supervisor.send({ type: "MEMORY", freeMb: availableMemoryMb() })
    this.supervisor.send({ type: "START", restored })
    this.services.spawnAll()
    if (this.argusOf !== null) this.supervisor.send({ type: "SPAWN.ARGUS", input: this.argusOf.input })
  }

  /** What Argus may see of this daemon, and the one way it acts on a service (the operator's restart). */
  private argusWorld(): ArgusWorld {
    const live = () => [...this.sessions.values()].filter((s) => !s.over && s.ref !== null)
    return {
      services: () => this.services.list(),
      liveAttempts: () => new Set(live().flatMap((s) => (this.viewOf(s).context.attemptId === null ? [] : [this.viewOf(s).context.attemptId!]))),
      liveBeads: () => new Set(live().map((s) => s.body.bead)),
      stalled: () =>
        live().flatMap((s) => {
          const state = this.viewOf(s).state
          const since = s.recorder.history[s.recorder.history.length - 1]?.at ?? Date.now()
          return state === "running.stalled" || state === "running.waitingInput" ? [{ bead: s.body.bead, state, forSeconds: Math.round((Date.now() - since) / 1000) }] : []
        }),
      recentFailures: () => this.failures.byReason(Date.now()),
      restartService: (name) => void this.services.command(name, "restart"),
      publish: (type, data) => this.options.events?.("argus", type, data),
      alert: (problem, text) => this.options.alert?.(problem, text),
      log: this.options.log
    }
  }

  /** Argus's last cycles (newest last), or null when it is not enabled. */
  argus(): { readonly enabled: boolean; readonly cycles: ReadonlyArray<ReturnType<typeof summarizeCycle>> } {
    const ref = this.supervisor.system.get("argus")
    if (ref === undefined) return { enabled: false, cycles: [] }
    const cycles = (ref.getSnapshot() as { context: { cycles: ReadonlyArray<ArgusCycle> } }).context.cycles
    return { enabled: true, cycles: cycles.map(summarizeCycle) }
  }

  /** Runs an Argus cycle now and gives it once audited. */
  async argusCycle(): Promise<ReturnType<typeof summarizeCycle>> {
    const ref = this.supervisor.system.get("argus")
    if (ref === undefined) throw new ArgusDisabled()
    const before = (ref.getSnapshot() as { context: { cycles: ReadonlyArray<ArgusCycle> } }).context.cycles.at(-1)
    ref.send({ type: "CYCLE", at: Date.now() })
    const done = await waitFor(ref, (snapshot: { value: unknown; context: { cycles: ReadonlyArray<ArgusCycle> } }) => snapshot.value === "idle" && snapshot.context.cycles.at(-1) !== before, { timeout: 180_000 })
    return summarizeCycle(done.context.cycles.at(-1)!)
  }

  /**
   * Runs a service effect for an operation. A refusal it fails with (a `DaemonError`) reaches the API as it
   * is; any other service failure (a queue or snapshot file that cannot be written, tmux gone) becomes
   * `ServiceUnavailable` naming its reason, instead of a FiberFailure the API could only call an internal error.
   */
  private async run<A, E>(effect: Effect.Effect<A, E, DaemonServices>): Promise<A> {
    const exit = await this.runtime.runPromise(Effect.exit(effect))
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw Cause.squash(exit.cause)
    const error: unknown = failure.value
    if (isDaemonError(error)) throw error
    const reason = error instanceof Error ? error.message : String(error)
    throw new ServiceUnavailable({ reason })
  }

  /** The bead's session while it is not over (a finished one stays in the map until its snapshot is removed). */
  private liveSession(bead: string): (LiveSession & { readonly ref: AnyActorRef }) | undefined {
    const session = this.sessions.get(bead)
    return session === undefined || session.ref === null || session.over ? undefined : (session as LiveSession & { readonly ref: AnyActorRef })
  }

  /** The session as its recorder last saw it. */
  private viewOf(session: LiveSession): SessionView {
    return session.recorder.view()
  }

  /** Checks a dispatch and queues it; the bead starts when the supervisor admits it. */
  async dispatch(body: DispatchBody): Promise<{ bead: string; priority: number; queued: number; draining: boolean }> {
    if (this.stopping) throw new DaemonStopping()
    const existing = this.liveSession(body.bead)
    if (existing !== undefined) throw new BeadBusy({ bead: body.bead, reason: { _tag: "Dispatched", state: this.viewOf(existing).state } })
    const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(body.bead)).pipe(Effect.orElseSucceed(() => null)))
    if (record !== null && runIsLive(record) && supervisorAlive(record.supervisor)) {
      throw new BeadBusy({ bead: body.bead, reason: { _tag: "SupervisedElsewhere", pid: record.supervisor.pid } })
    }
    const target = checkDispatchTarget(this.options.config, body)
    if (Either.isLeft(target)) throw target.left
    const request = { ...body, repo: target.right }
    const session = await this.sessionFor(request, undefined)
    // Queued first: a dispatch the queue cannot take creates nothing (no snapshot, no records, no child).
    let item: QueueItem
    try {
      item = await this.run(
        Effect.flatMap(WorkQueue, (queue) => queue.enqueue({ bead: body.bead, profile: body.agent, priority: body.priority, enqueuedAt: Date.now(), retry: false }))
      )
    } catch (error) {
      if (this.sessions.get(body.bead) === session) this.sessions.delete(body.bead)
      throw error
    }
    this.spawn(session, undefined)
    // Kept so `retry` can send the same bead again; a request that cannot be kept does not undo the dispatch.
    await this.run(Effect.flatMap(DispatchRequests, (requests) => requests.keep(request))).catch((error) =>
      this.options.log("dispatch request not kept", { bead: body.bead, reason: (error as Error).message })
    )
    this.supervisor.send({ type: "ENQUEUED", item })
    return { bead: body.bead, priority: body.priority, queued: item.seq, draining: this.supervisor.getSnapshot().context.draining }
  }

  /** The session of a dispatch, registered before its child is spawned: new, or taken over from its snapshot. */
  private async sessionFor(body: DispatchBody, restore: { history: ReadonlyArray<HistoryEntry> } | undefined): Promise<LiveSession> {
    const built = await Effect.runPromise(Effect.either(buildSpec(this.options, requestOfBody(body))))
    if (Either.isLeft(built)) throw new InvalidRequest({ problem: built.left.message })
    const spec = {
      ...built.right,
      supervisor: { pid: process.pid, procStart: processStartTicks(process.pid), host: os.hostname(), kind: "daemon" as const, startedAt: this.startedAt }
    }
    const recorder: SessionRecorder = new SessionRecorder(
      spec,
      this.runtime,
      {
        log: this.options.log,
        onState: (view, entry) => this.announceState(body, view, entry),
        onRecords: (run, result) => this.options.events?.("records", "records.written", recordsWrittenData(run, result))
      },
      restore?.history ?? []
    )
    const slot: FollowedSession = { bead: body.bead, profile: body.agent, restored: restore !== undefined, holdsSlot: false, state: null }
    const session: LiveSession = { body, spec, recorder, slot, ref: null, over: false }
    this.sessions.set(body.bead, session)
    return session
  }

  /** The root spawns the bead's session as its child: new, or restored from its persisted snapshot. */
  private spawn(session: LiveSession, snapshot: unknown): void {
    this.supervisor.send({
      type: "SPAWN",
      input: { bead: session.body.bead, policy: session.spec.profile.policy, ...(snapshot === undefined ? {} : { snapshot }) }
    })
  }

  /** The log (the journal under systemd) and the feed tell each bead's story as the foreground CLI does. */
  private announceState(body: DispatchBody, view: SessionView, entry: HistoryEntry): void {
    const c = view.context
    this.options.log("session state", {
      bead: body.bead,
      state: view.state,
      attempt: c.attempt,
      ...(c.outcome === null ? {} : { outcome: c.outcome }),
      ...(c.failureReason === null ? {} : { failure_reason: c.failureReason })
    })
    this.options.events?.("sessions", "session.state", sessionStateData(body.bead, body.agent, view, entry))
  }

  /**
   * The one observer of the tree: every actor's snapshots and events, from the
   * root's inspection. A session child's snapshot is recorded (records, state
   * history, feed, log), persisted, and its slot followed from its
   * `holdsSlot` tag; the machines' states and events go to the feed and to
   * each bead's history.
   */
  private observe(inspection: InspectionEvent): void {
    if (this.stopping) return
    this.options.inspection?.(inspection)
    const rootItem = feedOfRootEvent(inspection, process.pid)
    if (rootItem !== null) this.options.events?.(rootItem.topic, rootItem.type, rootItem.data)
    this.services.observe(inspection)
    const machineEvent = this.machineEvents.take(inspection)
    if (machineEvent !== null) this.machineEvent(machineEvent)
    if (inspection.type !== "@xstate.snapshot") return
    const systemId = (inspection.actorRef as { systemId?: string }).systemId
    const bead = systemId === undefined ? null : beadOfActor(systemId)
    if (bead === null) return
    const session = this.sessions.get(bead)
    if (session === undefined || session.over) return
    if (session.ref === null) session.ref = inspection.actorRef as AnyActorRef
    else if (session.ref !== inspection.actorRef) return
    const snapshot = inspection.snapshot as unknown as ObservedSnapshot & { status: string }
    if (snapshot.status !== "active" && snapshot.status !== "done") return
    this.onSessionSnapshot(session, snapshot)
  }

  private onSessionSnapshot(session: LiveSession, snapshot: ObservedSnapshot): void {
    const bead = session.body.bead
    const { view } = session.recorder.observe(snapshot)
    this.stallWatch.note(bead, view.state)
    // A failed attempt (retried from `backoff`, or final): counted once per attempt.
    if ((view.state === "backoff" || view.final) && view.context.outcome !== null && view.context.outcome !== "done")
      this.failures.note(`${bead}#${view.context.attempt}`, view.context.failureReason ?? view.context.outcome, Date.now())
    followSession(session.slot, snapshot, this.supervisor, (retry) => {
      void this.enqueue(session.body, retry).catch((error) => this.options.log("session not queued again", { bead, reason: (error as Error).message }))
    })
    if (view.final) {
      this.end(session)
      return
    }
    const ref = session.ref!
    this.persistence.persist(
      { body: session.body, state: view.state, persisted: () => ref.getPersistedSnapshot(), history: session.recorder.history },
      () => this.sessions.get(bead) === session && !session.over
    )
  }

  /**
   * The session is over: its slot is free, and once its records are on disk its
   * snapshot is removed (nothing can write it again) and the root lets the child go.
   */
  private end(session: LiveSession): void {
    const bead = session.body.bead
    session.over = true
    this.persistence.forget(bead)
    void session.recorder.flush().then(() => {
      // A new dispatch of the bead since then has saved its own snapshot: that one stays.
      const current = this.sessions.get(bead)
      if (current === undefined || current === session) this.persistence.remove(bead)
      if (this.sessions.get(bead) === session) this.sessions.delete(bead)
      if (!this.stopping && session.ref !== null) this.supervisor.send({ type: "SESSION.OVER", bead, id: session.ref.id })
    })
  }

  /** A session child whose machine threw: the root has let it go; its records say it failed. */
  private sessionFailed(bead: string, error: unknown): void {
    const session = this.sessions.get(bead)
    const message = error instanceof Error ? error.message : String(error)
    this.options.log("session actor failed", { bead, reason: message })
    if (session === undefined) return
    session.over = true
    this.persistence.forget(bead)
    // Its records would say it runs, under this daemon, for ever: it is ended and they are finalized, saying why.
    void this.run(endUnsupervisable(this.options.paths, bead, `its session actor failed (${message}), so the daemon could not supervise it`, this.options.log))
      .then((ended) => {
        if (ended !== null) this.options.events?.("records", "records.written", { bead, status: ended.status, lifecycle_state: ended.lifecycle_state, reason: ended.reason })
      })
      .catch((failure) => this.options.log("a failed session not ended", { bead, reason: (failure as Error).message }))
      .finally(() => {
        if (this.sessions.get(bead) === session) {
          this.persistence.remove(bead)
          this.sessions.delete(bead)
        }
      })
  }


  /** A machine's state or event: to the feed, and to its bead's history (kept as long as its records, for replay). */
  private machineEvent(event: MachineEvent): void {
    this.options.events?.("machines", event.kind === "state" ? "machine.state" : "machine.event", event)
    this.machineHistory.append(event)
  }

  /**
   * Takes over every unfinished session from its snapshot: the actor resumes
   * where it was, re-adopts its tmux session and transcript, and re-reads what
   * happened while no daemon ran (exit file, status file, signals). A session
   * holding a slot keeps it; a queued one stays queued.
   */
  async restore(): Promise<{ restored: ReadonlyArray<string>; refused: ReadonlyArray<string> }> {
    const { snapshots, refused } = await this.run(Effect.flatMap(SnapshotStore, (store) => store.loadAll))
    for (const error of refused) this.options.log("snapshot refused", { bead: error.bead, reason: error.message })
    for (const q of this.quarantined) {
      const bead = snapshotBead(q, this.options.paths.daemon.snapshots)
      if (bead === null) continue
      const ended = await this.run(endUnresumable(this.options.paths, bead, q, this.options.log))
      if (ended !== null) this.options.events?.("records", "records.written", { bead, status: ended.status, lifecycle_state: ended.lifecycle_state, reason: ended.reason })
    }
    const restored: string[] = []
    for (const snapshot of snapshots) {
      const request = requestOfSnapshot(snapshot)
      if (Either.isLeft(request)) {
        this.options.log("session not restored", { bead: snapshot.bead, reason: request.left })
        continue
      }
      const body = request.right
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(snapshot.bead)).pipe(Effect.orElseSucceed(() => null)))
      if (snapshotOutlivedSession(snapshot, record)) {
        await this.run(Effect.flatMap(SnapshotStore, (store) => store.remove(snapshot.bead)).pipe(Effect.ignore))
        continue
      }
      try {
        const session = await this.sessionFor(body, { history: snapshot.history })
        // The child's first snapshot tells the observer whether it holds a slot (ADOPTED) or waits in the queue.
        this.spawn(session, snapshot.actor)
        if (session.ref === null) throw new Error("its snapshot could not be restored")
        // A restored actor has lost its timers (they are not persisted): re-arm them from their absolute times.
        session.ref.send({ type: "RESUME", at: Date.now() })
        restored.push(body.bead)
      } catch (error) {
        this.options.log("session not restored", { bead: snapshot.bead, reason: (error as Error).message })
      }
    }
    return { restored, refused: refused.map((error) => `${error.bead}: ${error.message}`) }
  }

  private async enqueue(body: DispatchBody, retry: boolean): Promise<QueueItem> {
    const item = await this.run(
      Effect.flatMap(WorkQueue, (queue) => queue.enqueue({ bead: body.bead, profile: body.agent, priority: body.priority, enqueuedAt: Date.now(), retry }))
    )
    this.supervisor.send({ type: "ENQUEUED", item })
    return item
  }

  async cancel(bead: string): Promise<{ bead: string; cancelled: true }> {
    const session = this.liveSession(bead)
    if (session === undefined) {
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
      if (record === null) throw new UnknownBead({ bead })
      throw new NotRunning({ bead, ended: record.outcome ?? record.status })
    }
    if (this.viewOf(session).context.cancelRequested) throw new AlreadyCancelling({ bead })
    if (await this.run(Effect.flatMap(WorkQueue, (queue) => queue.remove(bead)))) this.supervisor.send({ type: "DEQUEUED", bead })
    session.ref.send({ type: "CANCEL", at: Date.now(), reason: "cancelled through the API" })
    return { bead, cancelled: true }
  }

  /** Dispatches a finished bead again with the request it was dispatched with. */
  async retry(bead: string): Promise<{ bead: string; priority: number; queued: number; draining: boolean }> {
    if (this.liveSession(bead) !== undefined) throw new BeadBusy({ bead, reason: { _tag: "StillRunning" } })
    const body = await this.run(Effect.flatMap(DispatchRequests, (requests) => requests.find(bead)))
    if (body === null) {
      const record = await this.run(Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(Effect.orElseSucceed(() => null)))
      if (record === null) throw new UnknownBead({ bead })
      throw new NoRetryRequest({ bead })
    }
    return this.dispatch(body)
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
      }).pipe(Effect.mapError((error) => new SendFailed({ session: name, reason: error.message })))
    )
    const attemptId = this.viewOf(session).context.attemptId
    if (attemptId !== null) recordInput(this.options.paths, bead, attemptId, { text, keys, enter, via })
    return { bead, sent: true }
  }

  signal(bead: string, status: string, summary: string | null, attemptId: string | null): { bead: string; accepted: true } {
    if (!this.sessions.has(bead)) throw new NoSession({ bead })
    appendSignalLine(this.options.paths, { bead, attempt_id: attemptId, status, summary, source: "signal", at: Date.now(), pid: process.pid })
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
        Effect.mapError((error) => new RecordUnreadable({ bead, file: error.file, reason: error.message }))
      )
    )
    const [run, result] = read
    if (run === null) throw new UnknownBead({ bead })
    return { run, result }
  }

  /** A bead's machine history, for replay: every session the daemon ran of it, as `state/history/<bead>.jsonl` holds it. */
  history(bead: string): { readonly file: string; readonly text: string } {
    const history = readHistory(this.options.paths, bead)
    if (history === null) throw new NoHistory({ bead })
    return history
  }

  /** The transcript of a bead's latest attempt, as its run record names it (live or finished), for download. */
  async transcript(bead: string): Promise<{ readonly file: string; readonly text: Buffer; readonly truncated: boolean }> {
    // The run record only (it names the transcript): not the result record `show` reads too.
    const run = await this.run(
      Effect.flatMap(RecordStore, (store) => store.readRun(bead)).pipe(
        Effect.mapError((error) => new RecordUnreadable({ bead, file: error.file, reason: error.message }))
      )
    )
    if (run === null) throw new UnknownBead({ bead })
    const transcript = readTranscript(this.options.paths, run.transcript_path)
    if (transcript === null) throw new NoTranscript({ bead })
    return transcript
  }

  /** What a dispatch may name: the configured profiles (and whether each runs a command), the templates (the workspace's and Warden's). */
  dispatchChoices(): { readonly profiles: ReadonlyArray<{ readonly name: string; readonly runs_command: boolean }>; readonly templates: ReadonlyArray<string> } {
    const profiles = Object.entries(this.options.config.profiles)
      .map(([name, profile]) => ({ name, runs_command: profile.args.some((arg) => arg.includes("{command}")) }))
      .sort((a, b) => a.name.localeCompare(b.name))
    return { profiles, templates: listTemplates(this.options.paths.templates) }
  }

  /** The memory notes of a day (`memory/<date>.md`), and the days that have notes. */
  memory(date: string): ReturnType<typeof readMemory> {
    return readMemory(this.options.paths, date)
  }

  /** The transcript of a bead's current attempt, for the terminal stream. */
  transcriptOf(bead: string): string | null {
    const session = this.liveSession(bead)
    return session === undefined ? null : (this.viewOf(session).context.launch?.transcriptPath ?? null)
  }

  async queue(): Promise<ReadonlyArray<QueueItem>> {
    return this.run(Effect.flatMap(WorkQueue, (queue) => queue.list))
  }

  /** Drain mode: nothing new is admitted (queued beads wait) while running sessions go on, for maintenance. */
  drain(on: boolean): { draining: boolean } {
    writeDrainState(this.options.paths.daemon.drain, on)
    this.supervisor.send({ type: "DRAIN", on })
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
    this.stallWatch.close()
    const services = this.services.running()
    // Stopping the root stops every child; `detaching` tells their interrupted effects to leave the agents alone.
    this.supervisor.stop()
    // Then the services' processes (their actors no longer watch, so nothing restarts them).
    await this.serviceLogic?.stopWithDaemon(services).catch((error) => this.options.log("services not stopped", { reason: String(error) }))
    await Promise.all([...this.sessions.values()].map((session) => session.recorder.flush()))
  }
}
