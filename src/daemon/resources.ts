import { Context, Effect, Layer } from "effect"
import type { ResolvedConfig } from "../config/loadConfig.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { ensureToken, type TokenFileRefused } from "./apiToken.js"
import { acquireDaemonLock, DaemonLocked } from "./daemonLock.js"
import { SnapshotStore, fileSnapshotStoreLayer, memorySnapshotStoreLayer } from "./SnapshotStore.js"
import { WorkQueue, fileWorkQueueLayer, memoryWorkQueueLayer } from "./WorkQueue.js"
import { DispatchRequests, fileDispatchRequestsLayer, memoryDispatchRequestsLayer } from "./DispatchRequests.js"
import { quarantineCorruptStateFiles, type QuarantinedFile } from "./stateFiles.js"
import { OperatorsGroupError } from "../workspace/stateAccess.js"

/** The config and workspace the daemon serves. */
export class DaemonSettings extends Context.Tag("warden/DaemonSettings")<
  DaemonSettings,
  {
    readonly config: ResolvedConfig
    readonly paths: WorkspacePaths
    readonly concurrency: number
    readonly quotas: Readonly<Record<string, number>>
    readonly log: (message: string, detail?: Record<string, unknown>) => void
  }
>() {}

/** The workspace is this daemon's: the lock is held from the layer's start to its end (the kernel drops it if the process dies). */
export class WorkspaceLock extends Context.Tag("warden/WorkspaceLock")<WorkspaceLock, { readonly file: string }>() {}

export const workspaceLockLayer = Layer.scoped(
  WorkspaceLock,
  Effect.flatMap(DaemonSettings, ({ paths }) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => acquireDaemonLock(paths.daemon.lock),
        catch: (error) =>
          error instanceof DaemonLocked
            ? error
            : new DaemonLocked({ file: paths.daemon.lock, reason: "flock-failed", detail: error instanceof Error ? error.message : String(error) })
      }),
      (lock) => Effect.sync(() => lock.release())
    ).pipe(Effect.as({ file: paths.daemon.lock }))
  )
)

/** The API's bearer token, from `state/api-token` (created on first start), checked at every start. */
export class ApiToken extends Context.Tag("warden/ApiToken")<ApiToken, { readonly value: string }>() {}

export const apiTokenLayer = Layer.effect(
  ApiToken,
  Effect.flatMap(DaemonSettings, ({ paths, config }) =>
    Effect.try({
      try: () => ({ value: ensureToken(paths.daemon.token, { operatorsGroup: config.operatorsGroup }) }),
      catch: (error) => error as TokenFileRefused | OperatorsGroupError
    })
  )
)

/** The state files that did not decode at start, moved aside before anything reads them (shown by `/healthz`). */
export class QuarantinedState extends Context.Tag("warden/QuarantinedState")<QuarantinedState, ReadonlyArray<QuarantinedFile>>() {}

export const quarantineLayer = Layer.effect(
  QuarantinedState,
  Effect.flatMap(DaemonSettings, ({ paths, log }) =>
    Effect.sync(() => {
      const quarantined = [...quarantineCorruptStateFiles(paths.daemon)]
      for (const q of quarantined) log("state file quarantined", { ...q })
      return quarantined
    })
  )
)

/** The queue, the snapshots and the kept dispatch requests, as the config's `storage` says: files under `state/`, or memory. */
export const storesLayer = (config: ResolvedConfig, paths: WorkspacePaths): Layer.Layer<WorkQueue | SnapshotStore | DispatchRequests> =>
  config.storage === "memory"
    ? Layer.mergeAll(memoryWorkQueueLayer(), memorySnapshotStoreLayer(), memoryDispatchRequestsLayer())
    : Layer.mergeAll(fileWorkQueueLayer(paths.daemon.queue), fileSnapshotStoreLayer(paths.daemon.snapshots), fileDispatchRequestsLayer(paths.daemon.requests))
