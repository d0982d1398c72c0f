import * as http from "node:http"
import { Effect } from "effect"
import client from "prom-client"
import { Daemon } from "../daemon/daemon.js"
import { operationsFromDaemon } from "../daemon/operations.js"
import { runningDaemon, type DaemonInfo } from "../daemon/runningDaemon.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { apiHandler, tokenMatches } from "../server/httpApi.js"
import { Feed } from "../server/feed.js"
import { closeTerminalStreams, streamTerminal } from "../server/terminalStream.js"
import { tmuxSocketProblem } from "../terminals/socketSafety.js"
import { WIRE_LIMITS, WebsocketSlots, decodeSegment, guardClientErrors, parseTarget, refuseUpgrade, serverOptions } from "../server/wireGuards.js"
import { removeStaleTemps } from "../records/staleTemps.js"
import * as path from "node:path"
import type { Duplex } from "node:stream"
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
    const feed = new Feed({
      file: env.paths.daemon.feed,
      highWaterFile: env.paths.daemon.feedSeq,
      window: options.feedWindow,
      maxBufferedBytes: 1024 * 1024,
      heartbeatMs: 15_000
    })
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
    handle = apiHandler(operations, { allowedOrigins: options.allowedOrigins })
    started = true
    const websockets = new WebsocketSlots(WIRE_LIMITS.maxWebsockets)
    server.on("upgrade", (req, socket: Duplex, head) => {
      // A client that resets mid-handshake must not become an uncaught 'error'.
      socket.on("error", () => socket.destroy())
      const refuse = (status: number, reason: string) => refuseUpgrade(socket, status, reason)
      const url = parseTarget(req.url)
      if (url === null) return refuse(400, "malformed request target")
      const origin = req.headers.origin
      if (origin !== undefined && !options.allowedOrigins.includes(origin)) return refuse(403, `origin ${origin} is not allowed`)
      // Browsers cannot set headers on a websocket: the token may come as ?token= too.
      const query = url.searchParams.get("token")
      if (!tokenMatches(req.headers.authorization ?? (query === null ? undefined : `Bearer ${query}`), daemon.token)) {
        return refuse(401, "a bearer token is required")
      }
      const terminal = /^\/v1\/sessions\/([^/]+)\/terminal$/.exec(url.pathname)
      const bead = terminal === null ? null : decodeSegment(terminal[1]!)
      if (terminal !== null && bead === null) return refuse(400, "malformed percent-encoding in the bead id")
      if (url.pathname !== "/v1/feed" && bead === null) return refuse(404, `no websocket at ${url.pathname}`)
      if (!websockets.take(socket)) return
      if (url.pathname === "/v1/feed") return feed.handleUpgrade(req, socket, head, url)
      if (bead !== null) {
        const transcript = daemon.transcriptOf(bead)
        if (transcript === null) return refuse(404, `${bead} has no running session`)
        const wantsInput = url.searchParams.get("input") === "1"
        return streamTerminal(req, socket, head, {
          transcriptPath: transcript,
          input: wantsInput ? (text) => daemon.input(bead, text, [], false, "stream") : null,
          maxBufferedBytes: 1024 * 1024,
          backlogBytes: 64 * 1024,
          pingMs: WIRE_LIMITS.websocketPingMs
        })
      }
    })
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
    daemon.start()
    feed.publish("daemon", "daemon.ready", { pid: process.pid, restored })
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
