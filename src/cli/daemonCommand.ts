import * as http from "node:http"
import { Effect } from "effect"
import client from "prom-client"
import { Daemon } from "../daemon/daemon.js"
import { DaemonOperations, operationsFromDaemon } from "../daemon/operations.js"
import { runningDaemon, type DaemonInfo } from "../daemon/runningDaemon.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { Feed, FeedStreams } from "../server/feed.js"
import { closeTerminalStreams } from "../server/terminalStream.js"
import { tmuxSocketProblem } from "../terminals/socketSafety.js"
import { WIRE_LIMITS, WebsocketSlots, guardClientErrors, serverOptions } from "../server/wireGuards.js"
import { removeStaleTemps } from "../records/staleTemps.js"
import * as path from "node:path"
import { processStartTicks } from "../sessions/supervisorLiveness.js"
import { CliError, type CliEnvironment } from "./environment.js"
import { openLogger, stdoutIsJournal } from "./logger.js"
import { systemdNotifier } from "../daemon/systemdNotify.js"
import { startHousekeeping } from "../workspace/housekeeping.js"

export interface DaemonCommandOptions {
  readonly port: number
  readonly host: string
  readonly concurrency: number
  readonly quotas: Readonly<Record<string, number>>
  readonly allowedOrigins: ReadonlyArray<string>
  readonly feedWindow: number
}

/**
 * `warden daemon`: the supervisor in the foreground (systemd runs it so). It
 * serves the API on 127.0.0.1 until interrupted; SIGTERM stops it cleanly and
 * leaves the agents running in tmux.
 */
export const daemonCommand = (env: CliEnvironment, options: DaemonCommandOptions) =>
  Effect.gen(function* () {
    const socketProblem = tmuxSocketProblem(env.config.tmuxSocket)
    if (socketProblem !== null) return yield* new CliError({ message: `refusing to start: ${socketProblem}`, exitCode: 2 })
    // The port first: a daemon that cannot listen leaves nothing behind (no lock, no token, no log).
    let handle: http.RequestListener = (_req, res) => {
      res.writeHead(503, { "content-type": "application/json", "retry-after": "1" })
      res.end(JSON.stringify({ error: "the daemon is starting" }))
    }
    const server = http.createServer(serverOptions(), (req, res) => handle(req, res))
    guardClientErrors(server)
    yield* Effect.async<void, CliError>((resume) => {
      server.once("error", (error) => {
        const other = (error as NodeJS.ErrnoException).code === "EADDRINUSE" ? runningDaemon(env.paths) : null
        const why =
          other !== null
            ? `another warden daemon (pid ${other.pid}) serves this workspace on port ${other.port}`
            : (error as NodeJS.ErrnoException).code === "EADDRINUSE"
              ? `the port is in use by another program: choose another with --port or WARDEN_PORT`
              : error.message
        resume(Effect.fail(new CliError({ message: `cannot listen on ${options.host}:${options.port}: ${why}` })))
      })
      server.listen(options.port, options.host, () => {
        resume(Effect.void)
      })
    })
    let started = false
    // Until the daemon serves, a failed start only has to let the port go.
    yield* Effect.addFinalizer(() => (started ? Effect.void : Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))))
    const logger = openLogger(env.paths, { daemon: true }, { ...env.config.retention, journal: stdoutIsJournal() })
    const log = (message: string, detail?: Record<string, unknown>) => logger.info(detail ?? {}, message)
    const feed = new FeedStreams(
      new Feed({ file: env.paths.daemon.feed, highWaterFile: env.paths.daemon.feedSeq, window: options.feedWindow, maxBufferedBytes: 1024 * 1024, heartbeatMs: 15_000 }),
      new Feed({
        file: env.paths.daemon.machinesFeed,
        highWaterFile: env.paths.daemon.machinesFeedSeq,
        window: Math.max(options.feedWindow, 4 * 1024),
        maxBufferedBytes: 1024 * 1024,
        heartbeatMs: 15_000,
        topics: ["machines"]
      })
    )
    const daemon = yield* Effect.try({
      try: () =>
        new Daemon({
          config: env.config,
          paths: env.paths,
          concurrency: options.concurrency,
          quotas: options.quotas,
          log,
          events: (topic, type, data) => feed.publish(topic, type, data)
        }),
      catch: (error) => new CliError({ message: (error as Error).message })
    })
    for (const file of removeStaleTemps([env.paths.daemon.snapshots, path.dirname(env.paths.daemon.queue), env.paths.runs, env.paths.results])) log("removed a temporary file a killed process left", { file })
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
    const operations = operationsFromDaemon(daemon, async () => ({ contentType: registry.contentType, body: await registry.metrics() }))
    const websockets = new WebsocketSlots(WIRE_LIMITS.maxWebsockets)
    // The API's code (@effect/platform-node's server) is loaded by `warden daemon` only: no other command waits for it.
    const { makeApiServer } = yield* Effect.promise(() => import("../server/httpApi.js"))
    const api = yield* makeApiServer({ allowedOrigins: options.allowedOrigins, feed, websockets }).pipe(Effect.provideService(DaemonOperations, operations))
    handle = api.request
    started = true
    server.on("upgrade", api.upgrade)
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        // server.close waits for every connection, upgraded ones included: websockets are asked to
        // close first, and whatever is still open after the grace (a silent client) is cut.
        feed.close()
        closeTerminalStreams()
        server.close(() => resume(Effect.void))
        setTimeout(() => {
          server.closeAllConnections()
          websockets.destroyAll()
        }, WIRE_LIMITS.shutdownGraceMs).unref()
      })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : options.port
    // Ready only once every unfinished session is back under supervision.
    const { restored, refused } = yield* Effect.promise(() => daemon.restore())
    for (const reason of refused) process.stderr.write(`warden daemon: snapshot refused: ${reason}\n`)
    const housekeeping = startHousekeeping(env.config, env.paths, log)
    yield* Effect.addFinalizer(() => Effect.sync(housekeeping.stop))
    daemon.start(restored)
    const info: DaemonInfo = {
      pid: process.pid,
      proc_start: processStartTicks(process.pid),
      port,
      host: options.host,
      started_at: new Date(daemon.startedAt).toISOString()
    }
    writeFileAtomic(env.paths.daemon.info, `${JSON.stringify(info, null, 2)}\n`)
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
