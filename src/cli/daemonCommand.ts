import { Effect, Layer } from "effect"
import { DaemonSettings, apiTokenLayer, quarantineLayer, storesLayer, workspaceLockLayer } from "../daemon/resources.js"
import { Supervision, operationsLayer, supervisionLayer } from "../daemon/supervisionLayer.js"
import { snapshotSaverLayer } from "../daemon/snapshotPersistence.js"
import type { DaemonInfo } from "../daemon/runningDaemon.js"
import { systemdNotifier } from "../daemon/systemdNotify.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { liveLayer } from "../runtime/liveLayer.js"
import { HealthProbesLive } from "../services/HealthProbes.js"
import { ServiceProcessesLive } from "../services/ServiceProcesses.js"
import { SystemdUnitsLive } from "../services/SystemdUnits.js"
import { notifierConfigOf, notifierLayer } from "../services/Notifier.js"
import { advisorLayer } from "../argus/ArgusAdvisor.js"
import { ProcessesLive } from "../processes/Processes.js"
import { HttpListener, apiLayer, dashboardAuthLayer, feedLayer, listenLayer } from "../server/serverLayers.js"
import { processStartTicks } from "../sessions/supervisorLiveness.js"
import { PtyViewersLive } from "../terminals/ptyViewer.js"
import { tmuxSocketProblem } from "../terminals/socketSafety.js"
import { startHousekeeping } from "../workspace/housekeeping.js"
import * as fs from "node:fs"
import { CliError, type CliEnvironment } from "./environment.js"
import { openLogger, stdoutIsJournal } from "./logger.js"

export interface DaemonCommandOptions {
  readonly port: number
  readonly host: string
  readonly concurrency: number
  readonly quotas: Readonly<Record<string, number>>
  readonly allowedOrigins: ReadonlyArray<string>
  readonly feedWindow: number
}

/** The log (the journal under systemd, or the workspace's log file), opened once the port is the daemon's. */
const settingsLayer = (env: CliEnvironment, options: DaemonCommandOptions) =>
  Layer.sync(DaemonSettings, () => {
    const logger = openLogger(env.paths, { daemon: true }, { ...env.config.retention, journal: stdoutIsJournal() })
    return {
      config: env.config,
      paths: env.paths,
      concurrency: options.concurrency,
      quotas: options.quotas,
      log: (message: string, detail?: Record<string, unknown>) => logger.info(detail ?? {}, message)
    }
  })

/**
 * Ready: every unfinished session is back under supervision (restored from
 * its snapshot), admitting begins, housekeeping runs, and the daemon says so:
 * its info file for clients, systemd's READY=1, the log and stdout. At its end
 * (the first thing a stop undoes) systemd hears STOPPING=1.
 */
const readyLayer = (env: CliEnvironment, options: DaemonCommandOptions) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const daemon = yield* Supervision
      const { log } = yield* DaemonSettings
      const listener = yield* HttpListener
      const { restored, refused } = yield* Effect.promise(() => daemon.restore())
      for (const reason of refused) process.stderr.write(`warden daemon: snapshot refused: ${reason}\n`)
      const housekeeping = startHousekeeping(env.config, env.paths, log)
      yield* Effect.addFinalizer(() => Effect.sync(housekeeping.stop))
      daemon.start(restored)
      const info: DaemonInfo = {
        pid: process.pid,
        proc_start: processStartTicks(process.pid),
        port: listener.port,
        host: options.host,
        started_at: new Date(daemon.startedAt).toISOString()
      }
      writeFileAtomic(env.paths.daemon.info, `${JSON.stringify(info, null, 2)}\n`)
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(env.paths.daemon.info, { force: true })))
      const notifier = systemdNotifier(process.env, (message) => log(message))
      notifier.ready(`${restored.length} session(s) restored; API on ${options.host}:${listener.port}`)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          notifier.stopping()
          notifier.close()
        })
      )
      log("daemon ready", { port: listener.port, workspace: env.paths.root, restored })
      process.stdout.write(
        `warden daemon: pid ${process.pid}, http://${options.host}:${listener.port}, workspace ${env.paths.root}, ${restored.length} session(s) restored\n`
      )
    })
  )

/**
 * The daemon as layers, built in this order and released in the reverse one:
 * the port; the log; the workspace lock (held for the daemon's life); the
 * state files checked (corrupt ones quarantined); the API token; the services
 * and the stores the config chooses; the feed; snapshot persistence; the
 * actor tree; the operations; the API; ready.
 */
export const daemonLayer = (env: CliEnvironment, options: DaemonCommandOptions) =>
  readyLayer(env, options).pipe(
    Layer.provideMerge(apiLayer({ allowedOrigins: options.allowedOrigins })),
    Layer.provideMerge(PtyViewersLive),
    Layer.provideMerge(dashboardAuthLayer),
    Layer.provideMerge(operationsLayer),
    Layer.provideMerge(supervisionLayer),
    Layer.provideMerge(snapshotSaverLayer),
    Layer.provideMerge(feedLayer({ paths: env.paths, window: options.feedWindow })),
    Layer.provideMerge(
      Layer.mergeAll(
        liveLayer(env.config, env.paths),
        storesLayer(env.config, env.paths),
        ServiceProcessesLive,
        HealthProbesLive,
        SystemdUnitsLive,
        notifierLayer(notifierConfigOf(env.config.alerts), process.env).pipe(Layer.provide(ProcessesLive)),
        advisorLayer(env.config.argus.decider, env.config.argus.llm, process.env).pipe(Layer.provide(ProcessesLive))
      )
    ),
    Layer.provideMerge(apiTokenLayer),
    Layer.provideMerge(quarantineLayer),
    Layer.provideMerge(workspaceLockLayer),
    Layer.provideMerge(settingsLayer(env, options)),
    Layer.provideMerge(listenLayer({ host: options.host, port: options.port, paths: env.paths }))
  )

/**
 * `warden daemon`: the supervisor in the foreground (systemd runs it so). It
 * serves the API on 127.0.0.1 until interrupted; SIGTERM stops it cleanly and
 * leaves the agents running in tmux.
 */
export const daemonCommand = (env: CliEnvironment, options: DaemonCommandOptions) =>
  Effect.gen(function* () {
    const socketProblem = tmuxSocketProblem(env.config.tmuxSocket)
    if (socketProblem !== null) return yield* new CliError({ message: `refusing to start: ${socketProblem}`, exitCode: 2 })
    return yield* Layer.launch(daemonLayer(env, options)).pipe(Effect.mapError((error) => new CliError({ message: error.message })))
  })
