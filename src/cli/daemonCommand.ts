import * as http from "node:http"
import { Effect } from "effect"
import client from "prom-client"
import { Daemon, daemonFiles, type DaemonInfo } from "../daemon/daemon.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { apiHandler } from "../server/httpApi.js"
import { processStartTicks } from "../sessions/supervisorLiveness.js"
import { CliError, type CliEnvironment } from "./environment.js"
import { openLogger } from "./logger.js"
import { systemdNotifier } from "../daemon/systemdNotify.js"

export interface DaemonCommandOptions {
  readonly port: number
  readonly host: string
  readonly concurrency: number
  readonly quotas: Readonly<Record<string, number>>
  readonly allowedOrigins: ReadonlyArray<string>
}

/**
 * `warden daemon`: the supervisor in the foreground (systemd runs it so). It
 * serves the API on 127.0.0.1 until interrupted; SIGTERM stops it cleanly and
 * leaves the agents running in tmux.
 */
export const daemonCommand = (env: CliEnvironment, options: DaemonCommandOptions) =>
  Effect.gen(function* () {
    const logger = openLogger(env.paths, { daemon: true })
    const log = (message: string, detail?: Record<string, unknown>) => logger.info(detail ?? {}, message)
    const daemon = yield* Effect.try({
      try: () => new Daemon({ config: env.config, paths: env.paths, concurrency: options.concurrency, quotas: options.quotas, log }),
      catch: (error) => new CliError({ message: (error as Error).message })
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => daemon.stop()))

    const registry = new client.Registry()
    client.collectDefaultMetrics({ register: registry, prefix: "warden_" })
    new client.Gauge({
      name: "warden_sessions",
      help: "Session actors the daemon supervises",
      registers: [registry],
      collect() {
        this.set(daemon.sessions.size)
      }
    })
    new client.Gauge({
      name: "warden_slots_in_use",
      help: "Sessions holding a concurrency slot",
      registers: [registry],
      collect() {
        this.set(daemon.supervisor.getSnapshot().context.running.length)
      }
    })
    const server = http.createServer(
      apiHandler(daemon, {
        allowedOrigins: options.allowedOrigins,
        metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() })
      })
    )
    yield* Effect.async<void, CliError>((resume) => {
      server.once("error", (error) => {
        resume(Effect.fail(new CliError({ message: `cannot listen on ${options.host}:${options.port}: ${error.message}` })))
      })
      server.listen(options.port, options.host, () => {
        resume(Effect.void)
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : options.port
    // Ready only once every unfinished session is back under supervision.
    const { restored, refused } = yield* Effect.promise(() => daemon.restore())
    for (const reason of refused) process.stderr.write(`warden daemon: snapshot refused: ${reason}\n`)
    daemon.start()
    const info: DaemonInfo = {
      pid: process.pid,
      proc_start: processStartTicks(process.pid),
      port,
      host: options.host,
      started_at: new Date(daemon.startedAt).toISOString()
    }
    writeFileAtomic(daemonFiles(env.paths).info, `${JSON.stringify(info, null, 2)}\n`)
    const notifier = systemdNotifier(process.env, (message) => log(message))
    notifier.ready(`${restored.length} session(s) restored; API on ${options.host}:${port}`)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        notifier.stopping()
        notifier.close()
      })
    )
    log("daemon ready", { port, workspace: env.paths.root, restored })
    process.stdout.write(
      `warden daemon: pid ${process.pid}, http://${options.host}:${port}, workspace ${env.paths.root}, ${restored.length} session(s) restored\n`
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)
