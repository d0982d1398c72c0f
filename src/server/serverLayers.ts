import * as http from "node:http"
import type { Duplex } from "node:stream"
import { Context, Data, Effect, Layer } from "effect"
import { DaemonSettings } from "../daemon/resources.js"
import { runningDaemon } from "../daemon/runningDaemon.js"
import { DaemonEventSink } from "../daemon/supervisionLayer.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { DashboardAuth, makeMemoryDashboardAuth } from "./dashboardAuth.js"
import { Feed, FeedStreams } from "./feed.js"
import { ownOriginsOf } from "./sessionCookie.js"
import { closeTerminalStreams } from "./terminalStream.js"
import { makeTtyBridge } from "./ttyBridge.js"
import { WIRE_LIMITS, WebsocketSlots, guardClientErrors, serverOptions } from "./wireGuards.js"

/** The daemon could not listen on its address; `detail` says why (another daemon, another program, an error). */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{ readonly address: string; readonly detail: string }> {
  override get message(): string {
    return `cannot listen on ${this.address}: ${this.detail}`
  }
}

/** The daemon's HTTP server, listening: it answers 503 "starting" until `serve` gives it the API. */
export class HttpListener extends Context.Tag("warden/HttpListener")<
  HttpListener,
  {
    readonly server: http.Server
    readonly host: string
    readonly port: number
    readonly websockets: WebsocketSlots
    readonly serve: (request: http.RequestListener, upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void) => void
  }
>() {}

/**
 * Listens first: a daemon that cannot listen leaves nothing behind (no lock,
 * no token, no log). Until the API is served, every request is told the
 * daemon is starting; a start that fails only lets the port go.
 */
export const listenLayer = (options: { readonly host: string; readonly port: number; readonly paths: WorkspacePaths }) =>
  Layer.scoped(
    HttpListener,
    Effect.gen(function* () {
      let handle: http.RequestListener = (_req, res) => {
        res.writeHead(503, { "content-type": "application/json", "retry-after": "1" })
        res.end(JSON.stringify({ error: "the daemon is starting" }))
      }
      const server = http.createServer(serverOptions(), (req, res) => handle(req, res))
      guardClientErrors(server)
      const address = `${options.host}:${options.port}`
      yield* Effect.acquireRelease(
        Effect.async<void, ListenFailed>((resume) => {
          server.once("error", (error) => {
            const code = (error as NodeJS.ErrnoException).code
            const other = code === "EADDRINUSE" ? runningDaemon(options.paths) : null
            const detail =
              other !== null
                ? `another warden daemon (pid ${other.pid}) serves this workspace on port ${other.port}`
                : code === "EADDRINUSE"
                  ? `the port is in use by another program: choose another with --port or WARDEN_PORT`
                  : error.message
            resume(Effect.fail(new ListenFailed({ address, detail })))
          })
          server.listen(options.port, options.host, () => resume(Effect.void))
        }),
        // The API's end closes the server gracefully; a start that failed before it only lets the port go.
        () => (server.listening ? Effect.async<void>((resume) => void server.close(() => resume(Effect.void))) : Effect.void)
      )
      const bound = server.address()
      return {
        server,
        host: options.host,
        port: typeof bound === "object" && bound !== null ? bound.port : options.port,
        websockets: new WebsocketSlots(WIRE_LIMITS.maxWebsockets),
        serve: (request, upgrade) => {
          handle = request
          server.on("upgrade", upgrade)
        }
      }
    })
  )

/** The feed's two streams (the main one, and the machines'), kept under `state/`. */
export class FeedService extends Context.Tag("warden/Feed")<FeedService, FeedStreams>() {}

/** The feed, which is also where the daemon publishes what happens (`DaemonEventSink`). */
export const feedLayer = (options: { readonly paths: WorkspacePaths; readonly window: number }) =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { paths, window } = options
      const feed = yield* Effect.acquireRelease(
        Effect.sync(
          () =>
            new FeedStreams(
              new Feed({ file: paths.daemon.feed, highWaterFile: paths.daemon.feedSeq, window, maxBufferedBytes: 1024 * 1024, heartbeatMs: 15_000 }),
              new Feed({
                file: paths.daemon.machinesFeed,
                highWaterFile: paths.daemon.machinesFeedSeq,
                window: Math.max(window, 4 * 1024),
                maxBufferedBytes: 1024 * 1024,
                heartbeatMs: 15_000,
                topics: ["machines"]
              })
            )
        ),
        (feed) => Effect.sync(() => feed.close())
      )
      return Context.make(FeedService, feed).pipe(
        Context.add(DaemonEventSink, { publish: (topic, type, data) => void feed.publish(topic, type, data) })
      )
    })
  )

/** The dashboard's login codes and sessions, in memory (a restart ends every session), with the config's lifetimes. */
export const dashboardAuthLayer = Layer.effect(
  DashboardAuth,
  Effect.map(DaemonSettings, ({ config }) =>
    makeMemoryDashboardAuth({
      loginCodeMs: config.dashboard.loginCodeSeconds * 1000,
      sessionIdleMs: config.dashboard.sessionIdleMinutes * 60_000,
      sessionMaxMs: config.dashboard.sessionHours * 3_600_000
    })
  )
)

/**
 * Serves the declared API (`httpApi.ts`) on the listener. Its code
 * (@effect/platform-node's server) is loaded here only, so no other command
 * waits for it. At its end, websockets are told the daemon stops (1001) and
 * the server closes: connections still open after the grace (a silent
 * client) are cut.
 */
export const apiLayer = (options: { readonly allowedOrigins: ReadonlyArray<string> }) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const listener = yield* HttpListener
      const feed = yield* FeedService
      // Written as "../server/httpApi.js": the CLI's bundle leaves out exactly that path (package.json's build, --external).
      const { makeApiServer } = yield* Effect.promise(() => import("../server/httpApi.js"))
      const tty = yield* makeTtyBridge
      const api = yield* makeApiServer({
        allowedOrigins: options.allowedOrigins,
        ownOrigins: ownOriginsOf(listener.host, listener.port),
        feed,
        websockets: listener.websockets,
        tty
      })
      listener.serve(api.request, api.upgrade)
      // The live terminals' tmux clients are gone before the server waits for its connections.
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(tty.closeAll, Effect.async<void>((resume) => {
          // server.close waits for every connection, upgraded ones included: websockets are asked to
          // close first, and whatever is still open after the grace is cut.
          feed.close()
          closeTerminalStreams()
          listener.server.close(() => resume(Effect.void))
          setTimeout(() => {
            listener.server.closeAllConnections()
            listener.websockets.destroyAll()
          }, WIRE_LIMITS.shutdownGraceMs).unref()
        }))
      )
    })
  )
