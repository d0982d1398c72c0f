import { Context, Effect } from "effect"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"
import type { DispatchBody } from "../sessions/dispatchBody.js"
import type { Daemon, UnreadableRecord } from "./daemon.js"
import {
  NoSession,
  ServiceUnavailable,
  isDaemonError,
  type AlreadyCancelling,
  type BeadBusy,
  type DaemonError,
  type DaemonStopping,
  type InvalidRequest,
  type NoRetryRequest,
  type NotRunning,
  type RecordUnreadable,
  type RepoMissing,
  type RepoNotAllowed,
  type SendFailed,
  type UnknownBead,
  type UnknownProfile,
  type UnknownService,
  type ArgusDisabled,
  type NoHistory,
  type NoTranscript
} from "./errors.js"
import type { ServiceView } from "./serviceSupervision.js"
import type { QueueItem } from "./WorkQueue.js"
import type { QuarantinedFile } from "./stateFiles.js"

export interface DispatchAccepted {
  readonly bead: string
  readonly priority: number
  readonly queued: number
  readonly draining: boolean
}

export interface Health {
  readonly ok: boolean
  readonly pid: number
  readonly uptime_seconds: number
  readonly sessions: number
  readonly running: number
  readonly concurrency: number
  readonly draining: boolean
  readonly quarantined: ReadonlyArray<QuarantinedFile>
}

export type DispatchRefusal = DaemonStopping | BeadBusy | UnknownProfile | RepoMissing | RepoNotAllowed | InvalidRequest | ServiceUnavailable

/**
 * What the HTTP API (and the websocket streams) may ask of the daemon. The
 * server depends on this tag, never on the `Daemon` class; each operation
 * fails with the daemon's domain errors (`errors.ts`), which the API turns
 * into statuses in one table.
 */
export class DaemonOperations extends Context.Tag("warden/DaemonOperations")<
  DaemonOperations,
  {
    /** The bearer token every request but `/healthz` must carry. */
    readonly token: string
    readonly dispatch: (body: DispatchBody) => Effect.Effect<DispatchAccepted, DispatchRefusal>
    readonly cancel: (bead: string) => Effect.Effect<{ bead: string; cancelled: true }, UnknownBead | NotRunning | AlreadyCancelling | ServiceUnavailable>
    readonly retry: (bead: string) => Effect.Effect<DispatchAccepted, DispatchRefusal | UnknownBead | NoRetryRequest>
    readonly signal: (
      bead: string,
      status: "done" | "failed" | "waiting",
      summary: string | null,
      attemptId: string | null
    ) => Effect.Effect<{ bead: string; accepted: true }, NoSession>
    readonly input: (
      bead: string,
      text: string | undefined,
      keys: ReadonlyArray<string>,
      enter: boolean,
      via: "api" | "stream"
    ) => Effect.Effect<{ bead: string; sent: true }, UnknownBead | NotRunning | InvalidRequest | SendFailed | ServiceUnavailable>
    readonly records: Effect.Effect<{ sessions: ReadonlyArray<RunRecord>; unreadable: ReadonlyArray<UnreadableRecord> }, ServiceUnavailable>
    readonly show: (bead: string) => Effect.Effect<{ run: RunRecord; result: ResultRecord | null }, UnknownBead | RecordUnreadable | ServiceUnavailable>
    readonly queue: Effect.Effect<ReadonlyArray<QueueItem>, ServiceUnavailable>
    readonly drain: (on: boolean) => Effect.Effect<{ draining: boolean }>
    readonly health: Effect.Effect<Health>
    /** The transcript of a bead's current attempt (for the terminal stream), or `NoSession`. */
    readonly transcriptOf: (bead: string) => Effect.Effect<string, NoSession>
    /** The supervised services, by name. */
    readonly services: Effect.Effect<ReadonlyArray<ServiceView>>
    /** The operator's verb for a service: `restart` (not counted towards its restart limit), `stop`, `start`. */
    readonly serviceCommand: (name: string, verb: "restart" | "stop" | "start") => Effect.Effect<ServiceView, UnknownService>
    /** Argus's last cycles, each decision with its action, target, source, verdict and reason. */
    readonly argus: Effect.Effect<ReturnType<Daemon["argus"]>>
    /** Runs an Argus cycle now and gives it once audited. */
    readonly argusCycle: Effect.Effect<Awaited<ReturnType<Daemon["argusCycle"]>>, ArgusDisabled>
    /** A bead's machine history (the text of `state/history/<bead>.jsonl`), for replay. */
    readonly history: (bead: string) => Effect.Effect<{ readonly file: string; readonly text: string }, NoHistory>
    /** The transcript of a bead's latest attempt (its last 16 MiB), for download. */
    readonly transcript: (bead: string) => Effect.Effect<{ readonly file: string; readonly text: Buffer; readonly truncated: boolean }, UnknownBead | RecordUnreadable | NoTranscript | ServiceUnavailable>
    /** What a dispatch may name: the profiles (and whether each runs a command) and the templates. */
    readonly dispatchChoices: Effect.Effect<ReturnType<Daemon["dispatchChoices"]>>
    /** A day's memory notes (`YYYY-MM-DD`), and the days that have some. */
    readonly memory: (date: string) => Effect.Effect<{ readonly date: string; readonly text: string; readonly dates: ReadonlyArray<string> }>
    /** The Prometheus exposition of the daemon's metrics. */
    readonly metrics: Effect.Effect<{ contentType: string; body: string }, ServiceUnavailable>
  }
>() {}

/**
 * A daemon call as an Effect: its domain errors become typed failures; anything else it throws is a
 * defect (a bug), which the API answers as an internal error.
 */
const call = <A, E extends DaemonError>(operation: () => A | Promise<A>): Effect.Effect<A, E> =>
  Effect.tryPromise({ try: async () => operation(), catch: (error) => error }).pipe(
    Effect.catchAll((error) => (isDaemonError(error) ? Effect.fail(error as E) : Effect.die(error)))
  )

/** The operations of a running `Daemon` (the daemon's class stays behind this adapter). */
export const operationsFromDaemon = (
  daemon: Daemon,
  token: string,
  metrics: () => Promise<{ contentType: string; body: string }>
): Context.Tag.Service<DaemonOperations> => ({
  token,
  dispatch: (body) => call(() => daemon.dispatch(body)),
  cancel: (bead) => call(() => daemon.cancel(bead)),
  retry: (bead) => call(() => daemon.retry(bead)),
  signal: (bead, status, summary, attemptId) => call(() => daemon.signal(bead, status, summary, attemptId)),
  input: (bead, text, keys, enter, via) => call(() => daemon.input(bead, text, keys, enter, via)),
  records: call(() => daemon.records()),
  show: (bead) => call(() => daemon.show(bead)),
  queue: call(() => daemon.queue()),
  drain: (on) => Effect.sync(() => daemon.drain(on)),
  health: Effect.sync(() => daemon.health()),
  transcriptOf: (bead) => {
    const transcript = daemon.transcriptOf(bead)
    return transcript === null ? Effect.fail(new NoSession({ bead })) : Effect.succeed(transcript)
  },
  services: Effect.sync(() => daemon.services.list()),
  argus: Effect.sync(() => daemon.argus()),
  argusCycle: call(() => daemon.argusCycle()),
  serviceCommand: (name, verb) => call(() => daemon.services.command(name, verb)),
  history: (bead) => call(() => daemon.history(bead)),
  transcript: (bead) => call(() => daemon.transcript(bead)),
  memory: (date) => Effect.sync(() => daemon.memory(date)),
  dispatchChoices: Effect.sync(() => daemon.dispatchChoices()),
  metrics: Effect.tryPromise({ try: metrics, catch: (error) => new ServiceUnavailable({ reason: `metrics: ${(error as Error).message}` }) })
})
