import { createHash, timingSafeEqual } from "node:crypto"
import * as http from "node:http"
import type { Duplex } from "node:stream"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Effect, Either, Layer, type Redacted, Schema } from "effect"
import { formatIssues } from "../config/formatIssues.js"
import { InvalidRequest, RecordUnreadable } from "../daemon/errors.js"
import { DaemonOperations } from "../daemon/operations.js"
import { BodyTooLarge, CrossSiteRefused, MalformedRequest, MethodNotAllowed, NoSuchEndpoint, OriginRefused, Unauthorized, UnknownMachine, UpgradeRequired } from "./apiErrors.js"
import { Authorization, WardenApi } from "./apiDefinition.js"
import { DrainBody, EmptyBody, InputBody, SignalBody } from "./apiSchemas.js"
import { DispatchBody } from "../sessions/dispatchBody.js"
import { PREFLIGHT_HEADERS, corsHeaders, isPreflight } from "./cors.js"
import type { Feed } from "./feed.js"
import { streamTerminal } from "./terminalStream.js"
import { historySteps, machineDrawing, runHistory } from "./dashboardData.js"
import { machineNames } from "../viz/machineCatalog.js"
import { localDate } from "../records/buildRecords.js"
import { type TtyBridge, sizeProblem } from "./ttyBridge.js"
import { DashboardAuth, secretsMatch } from "./dashboardAuth.js"
import { dashboardAssetsDir, dashboardPublicDir, isDashboardPath, makeDashboardPages } from "./dashboardPages.js"
import { CSRF_HEADER, changesState, requestSite, sessionIdOf } from "./sessionCookie.js"
import { WIRE_LIMITS, type WebsocketSlots, decodeSegment, parseTarget, refuseUpgrade } from "./wireGuards.js"

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024

const digest = (text: string) => createHash("sha256").update(text).digest()

/** Compares the bearer token in constant time (hashes first, so lengths never leak); the scheme is case-insensitive (RFC 9110). */
export const tokenMatches = (header: string | undefined, token: string): boolean => {
  const given = header === undefined ? null : /^bearer[ \t]+(.*)$/is.exec(header)
  if (given === null || token === "") return false
  return timingSafeEqual(digest(given[1]!.trim()), digest(token))
}

/** Whether a request asks for a websocket (the upgrade path runs the same app as plain requests). */
const isUpgrade = (headers: http.IncomingHttpHeaders): boolean => (headers.upgrade ?? "").toLowerCase() === "websocket"

/** The dashboard's side of `authorize`: its sessions, and the daemon's own origins its pages come from. */
export interface DashboardGate {
  readonly ownOrigins: ReadonlyArray<string>
  readonly sessions: DashboardAuth["Type"]
}

/**
 * A request that carries the dashboard's session cookie instead of the token: the session must be live
 * (401), and if the request changes state or opens a websocket, it must come from the daemon's own origin
 * and (a websocket cannot carry headers) carry the session's CSRF token (403).
 */
const authorizeSession = (
  request: { readonly headers: http.IncomingHttpHeaders; readonly method?: string | undefined },
  id: string,
  gate: DashboardGate
): Effect.Effect<void, Unauthorized | CrossSiteRefused> =>
  Effect.flatMap(gate.sessions.session(id), (session): Effect.Effect<void, Unauthorized | CrossSiteRefused> => {
    if (session._tag === "None") return Effect.fail(new Unauthorized({ reason: "session" }))
    const upgrading = isUpgrade(request.headers)
    if (!upgrading && !changesState(request.method)) return Effect.void
    if (requestSite(request.headers, gate.ownOrigins) !== "same-origin") return Effect.fail(new CrossSiteRefused({ reason: "origin" }))
    if (upgrading) return Effect.void
    const csrf = request.headers[CSRF_HEADER]
    return secretsMatch(typeof csrf === "string" ? csrf : undefined, session.value.csrf) ? Effect.void : Effect.fail(new CrossSiteRefused({ reason: "csrf" }))
  })

/**
 * The one check of who may call the API, for HTTP and websocket alike: an
 * `Origin` must be one given with `--allow-origin` or the daemon's own (403),
 * and the bearer token must match (401). Browsers cannot set headers on a
 * websocket, so an upgrade may carry the token as `?token=` instead. With the
 * `dashboard` gate, a request without a token may carry the dashboard's
 * session cookie instead (see `authorizeSession`).
 */
export const authorize = (
  request: { readonly headers: http.IncomingHttpHeaders; readonly url: string; readonly method?: string | undefined },
  token: string,
  allowedOrigins: ReadonlyArray<string>,
  dashboard?: DashboardGate
): Effect.Effect<void, Unauthorized | OriginRefused | CrossSiteRefused> => {
  const origin = request.headers.origin
  if (origin !== undefined && !allowedOrigins.includes(origin) && !(dashboard?.ownOrigins.includes(origin) ?? false)) {
    return Effect.fail(new OriginRefused({ origin }))
  }
  const query = isUpgrade(request.headers) ? (parseTarget(request.url)?.searchParams.get("token") ?? null) : null
  const header = request.headers.authorization ?? (query === null ? undefined : `Bearer ${query}`)
  const sessionId = header === undefined && dashboard !== undefined ? sessionIdOf(request.headers) : null
  if (sessionId !== null) return authorizeSession(request, sessionId, dashboard!)
  if (tokenMatches(header, token)) return Effect.void
  return Effect.fail(new Unauthorized({ reason: header === undefined || !/^bearer[ \t]+\S/i.test(header) ? "missing" : "wrong" }))
}

const readBody = (req: http.IncomingMessage): Promise<Either.Either<string, BodyTooLarge>> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > MAX_BODY_BYTES) {
      resolve(Either.left(new BodyTooLarge({ bytes: declared, limit: MAX_BODY_BYTES })))
      req.resume()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const collect = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        // Not req.destroy(): that closes the socket before the 413 is written. The rest is
        // discarded, and the connection is closed once the answer is out (its `connection: close`).
        req.off("data", collect)
        req.resume()
        resolve(Either.left(new BodyTooLarge({ bytes: null, limit: MAX_BODY_BYTES })))
        return
      }
      chunks.push(chunk)
    }
    req.on("data", collect)
    req.on("end", () => resolve(Either.right(Buffer.concat(chunks).toString("utf8"))))
    req.on("error", reject)
  })

/**
 * Reads and decodes a request body against the schema its endpoint declares: over 64 KiB is a 413, not
 * JSON a 400, a schema violation or an unknown field a 422 naming each problem with its path.
 */
const decodeBody = <A, I>(request: HttpServerRequest.HttpServerRequest, schema: Schema.Schema<A, I>) =>
  Effect.gen(function* () {
    const read = yield* Effect.tryPromise({
      try: () => readBody(NodeHttpServerRequest.toIncomingMessage(request)),
      catch: (error) => new MalformedRequest({ problem: `the body could not be read: ${(error as Error).message}` })
    })
    const text = yield* read
    const json = yield* Effect.try({
      try: (): unknown => (text.trim() === "" ? {} : JSON.parse(text)),
      catch: (error) => new MalformedRequest({ problem: `the body is not JSON: ${(error as Error).message}` })
    })
    const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(json)
    if (Either.isLeft(decoded)) {
      return yield* new InvalidRequest({
        problem: formatIssues(decoded.left)
          .map((i) => `${i.path === "" ? "(body)" : i.path}: ${i.message}`)
          .join("; ")
      })
    }
    return decoded.right
  })

/** Every declared route as a method and a path pattern, for the 405 of a known path asked with another method. */
export const declaredRoutes = (): ReadonlyArray<{ readonly group: string; readonly method: string; readonly path: string; readonly pattern: RegExp }> => {
  const routes: Array<{ group: string; method: string; path: string; pattern: RegExp }> = []
  for (const group of Object.values(WardenApi.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      const pattern = new RegExp(`^${endpoint.path.replace(/:[A-Za-z]+/g, "[^/]+")}$`)
      routes.push({ group: group.identifier, method: endpoint.method, path: endpoint.path, pattern })
    }
  }
  return routes
}

export interface ApiServerOptions {
  readonly allowedOrigins: ReadonlyArray<string>
  /** The daemon's own origins (`http://127.0.0.1:PORT`, `http://localhost:PORT`); the first is the login URL's. */
  readonly ownOrigins: ReadonlyArray<string>
  readonly feed: Pick<Feed, "handleUpgrade">
  readonly websockets: WebsocketSlots
  /** The live terminals (`/v1/sessions/:bead/tty`). */
  readonly tty: TtyBridge
}

/** The node socket of an upgrade request while the app decides on it (see `upgrade` below). */
interface PendingUpgrade {
  readonly socket: Duplex
  readonly head: Buffer
  readonly response: http.ServerResponse
}

/**
 * The daemon's HTTP API (`apiDefinition.ts`) built with `HttpApiBuilder` and
 * served on the daemon's own node server: `request` for the `request` event,
 * `upgrade` for websockets, which go through the same app (routing, the
 * `Authorization` middleware) before the feed or the terminal stream takes
 * their socket.
 */
export const makeApiServer = (
  options: ApiServerOptions
): Effect.Effect<
  {
    readonly request: (req: http.IncomingMessage, res: http.ServerResponse) => void
    readonly upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void
  },
  never,
  DaemonOperations | DashboardAuth
> =>
  Effect.gen(function* () {
    const ops = yield* DaemonOperations
    const gate: DashboardGate = { ownOrigins: options.ownOrigins, sessions: yield* DashboardAuth }
    const authorizeRequest = (request: Parameters<typeof authorize>[0]) => authorize(request, ops.token, options.allowedOrigins, gate)
    const pending = new WeakMap<http.IncomingMessage, PendingUpgrade>()
    const routes = declaredRoutes()

    /** Hands an authorized upgrade's socket to a websocket server; an answer the app writes after that goes nowhere. */
    const takeOver = (request: HttpServerRequest.HttpServerRequest, serve: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void) =>
      Effect.gen(function* () {
        const req = NodeHttpServerRequest.toIncomingMessage(request)
        const upgrade = pending.get(req)
        if (upgrade === undefined) return yield* new UpgradeRequired({ path: new URL(request.url, "http://localhost").pathname })
        pending.delete(req)
        upgrade.response.detachSocket(upgrade.socket as never)
        if (options.websockets.take(upgrade.socket)) serve(req, upgrade.socket, upgrade.head)
        return HttpServerResponse.empty()
      })

    const AuthorizationLive = Layer.succeed(
      Authorization,
      Authorization.of({
        // The platform's bearer decoder drops seven characters of whatever is sent: the raw request is checked instead.
        bearer: (_decoded: Redacted.Redacted) =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, authorizeRequest)
      })
    )
    const HealthLive = HttpApiBuilder.group(WardenApi, "health", (handlers) => handlers.handle("health", () => ops.health))
    const DispatchLive = HttpApiBuilder.group(WardenApi, "dispatch", (handlers) =>
      handlers
        .handleRaw("dispatch", ({ request }) => Effect.flatMap(decodeBody(request, DispatchBody), ops.dispatch))
        .handleRaw("drain", ({ request }) => Effect.flatMap(decodeBody(request, DrainBody), (body) => ops.drain(body.on)))
        .handle("queue", () => Effect.map(ops.queue, (queue) => ({ queue })))
        .handle("choices", () => ops.dispatchChoices)
    )
    const SessionsLive = HttpApiBuilder.group(WardenApi, "sessions", (handlers) =>
      handlers
        .handle("list", () => ops.records)
        .handle("show", ({ path }) => ops.show(path.bead))
        .handleRaw("cancel", ({ path, request }) => Effect.zipRight(decodeBody(request, EmptyBody), ops.cancel(path.bead)))
        .handleRaw("retry", ({ path, request }) => Effect.zipRight(decodeBody(request, EmptyBody), ops.retry(path.bead)))
        .handleRaw("signal", ({ path, request }) =>
          Effect.flatMap(decodeBody(request, SignalBody), (body) => ops.signal(path.bead, body.status, body.summary ?? null, body.attempt_id ?? null))
        )
        .handleRaw("input", ({ path, request }) =>
          Effect.flatMap(decodeBody(request, InputBody), (body) => {
            const keys = body.keys ?? []
            if ((body.text === undefined || body.text === "") && keys.length === 0 && !body.enter) {
              return Effect.fail(new InvalidRequest({ problem: "nothing to send: give text or keys" }))
            }
            return ops.input(path.bead, body.text, keys, body.enter && keys.length === 0, "api")
          })
        )
    )
    const ServicesLive = HttpApiBuilder.group(WardenApi, "services", (handlers) =>
      handlers
        .handle("services", () => Effect.map(ops.services, (services) => ({ services })))
        .handleRaw("serviceCommand", ({ path, request }) => Effect.zipRight(decodeBody(request, EmptyBody), ops.serviceCommand(path.name, path.verb)))
    )
    const ArgusLive = HttpApiBuilder.group(WardenApi, "argus", (handlers) =>
      handlers.handle("argus", () => ops.argus).handleRaw("argusCycle", ({ request }) => Effect.zipRight(decodeBody(request, EmptyBody), ops.argusCycle))
    )
    const drawing = (name: string, format: "svg" | "json") =>
      Effect.gen(function* () {
        const drawn = machineDrawing(name, format)
        if (drawn === null) return yield* new UnknownMachine({ name, machines: machineNames })
        return yield* Effect.promise(() => drawn)
      })
    const ViewsLive = HttpApiBuilder.group(WardenApi, "views", (handlers) =>
      handlers
        .handle("machines", () => Effect.succeed({ machines: machineNames }))
        .handle("machineSvg", ({ path }) => drawing(path.name, "svg"))
        .handle("machineGraph", ({ path }) => Effect.map(drawing(path.name, "json"), (json): unknown => JSON.parse(json)))
        .handle("history", ({ path }) =>
          Effect.gen(function* () {
            const history = yield* ops.history(path.bead)
            // The decisions and their evidence are in the run record; without a readable one, steps carry none.
            const run = yield* ops.show(path.bead).pipe(
              Effect.map((shown) => shown.run),
              Effect.catchTag("UnknownBead", () => Effect.succeed(null)),
              Effect.catchTag("ServiceUnavailable", () => Effect.succeed(null))
            )
            const replay = historySteps(path.bead, history, run)
            if (!replay.ok) return yield* new RecordUnreadable({ bead: path.bead, file: history.file, reason: replay.problem })
            return { bead: path.bead, steps: replay.steps }
          })
        )
        .handle("transcript", ({ path }) =>
          Effect.map(ops.transcript(path.bead), (transcript) =>
            HttpServerResponse.uint8Array(transcript.text, {
              contentType: "text/plain; charset=utf-8",
              headers: {
                "content-disposition": `attachment; filename="${path.bead}.log"`,
                "x-content-type-options": "nosniff",
                ...(transcript.truncated ? { "x-warden-truncated": "true" } : {})
              }
            })
          )
        )
        .handle("runs", () => Effect.map(ops.records, (records) => runHistory(records.sessions)))
        .handle("memory", ({ urlParams }) => ops.memory(urlParams.date ?? localDate(Date.now())))
    )
    const StreamsLive = HttpApiBuilder.group(WardenApi, "streams", (handlers) =>
      handlers
        .handleRaw("feed", ({ request }) =>
          takeOver(request, (req, socket, head) => options.feed.handleUpgrade(req, socket, head, new URL(req.url ?? "/", "http://localhost")))
        )
        .handleRaw("terminal", ({ path, request }) =>
          Effect.flatMap(ops.transcriptOf(path.bead), (transcript) =>
            takeOver(request, (req, socket, head) => {
              const wantsInput = new URL(req.url ?? "/", "http://localhost").searchParams.get("input") === "1"
              streamTerminal(req, socket, head, {
                transcriptPath: transcript,
                // A refusal goes back to the typist as its sentence (the stream sends `{"error": ...}`).
                input: wantsInput
                  ? (text) => Effect.runPromise(Effect.mapError(ops.input(path.bead, text, [], false, "stream"), (error) => new Error(error.message)))
                  : null,
                maxBufferedBytes: 1024 * 1024,
                backlogBytes: 64 * 1024,
                pingMs: WIRE_LIMITS.websocketPingMs
              })
            })
          )
        )
        .handleRaw("tty", ({ path, request }) =>
          Effect.gen(function* () {
            // The viewer's size; a bad one is refused before anything is attached.
            const query = new URL(request.url, "http://localhost").searchParams
            const size = { cols: Number(query.get("cols") ?? 80), rows: Number(query.get("rows") ?? 24) }
            const problem = sizeProblem(size.cols, size.rows)
            if (problem !== null) return yield* new InvalidRequest({ problem })
            yield* ops.transcriptOf(path.bead)
            const session = yield* options.tty.liveSession(path.bead)
            return yield* takeOver(request, (req, socket, head) =>
              options.tty.serve(req, socket, head, { bead: path.bead, session, size, pingMs: WIRE_LIMITS.websocketPingMs })
            )
          })
        )
    )
    const OperationsLive = HttpApiBuilder.group(WardenApi, "operations", (handlers) =>
      handlers
        .handle("metrics", () => Effect.map(ops.metrics, (metrics) => HttpServerResponse.text(metrics.body, { contentType: metrics.contentType })))
        .handle("openapi", () => Effect.succeed(OpenApi.fromApi(WardenApi)))
    )
    const DashboardLive = HttpApiBuilder.group(WardenApi, "dashboard", (handlers) =>
      handlers
        .handleRaw("login", ({ request }) =>
          Effect.gen(function* () {
            yield* decodeBody(request, EmptyBody)
            // A login code is for a holder of the token only: a session cannot make codes to outlive itself.
            if (!tokenMatches(request.headers.authorization, ops.token)) return yield* new Unauthorized({ reason: "missing" })
            const login = yield* gate.sessions.issueCode
            return { url: `${options.ownOrigins[0]}/login?code=${login.code}`, expires_at: new Date(login.expiresAt).toISOString() }
          })
        )
        .handle("session", () =>
          Effect.gen(function* () {
            const request = yield* HttpServerRequest.HttpServerRequest
            const id = sessionIdOf(request.headers)
            const session = id === null ? null : yield* gate.sessions.session(id)
            if (session === null || session._tag === "None") return yield* new Unauthorized({ reason: "session" })
            return { csrf: session.value.csrf, expires_at: new Date(session.value.expiresAt).toISOString() }
          })
        )
    )
    const pages = makeDashboardPages({ publicDir: dashboardPublicDir(), assetsDir: dashboardAssetsDir(), auth: gate.sessions, authorize: (req) => authorizeRequest({ headers: req.headers, url: req.url ?? "/", method: req.method }) })

    /**
     * Around the routes: CORS (the preflight answered before the token is checked, since browsers send
     * none with it), `cache-control: no-store`, and the refusals the router cannot give in its own words:
     * a path it does not know (after the same `authorize` as every route: nothing is said without the
     * token), a known path asked with another method (405), a bad bead id in a path (400).
     */
    const Gateway = HttpApiBuilder.middleware(
      WardenApi,
      (app) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const url = new URL(request.url, "http://localhost")
          const origin = request.headers.origin
          const allowed = origin !== undefined && options.allowedOrigins.includes(origin)
          yield* HttpApp.appendPreResponseHandler((_request, response) =>
            Effect.succeed(
              response.pipe(
                HttpServerResponse.setHeaders({
                  "cache-control": "no-store",
                  ...corsHeaders(origin, allowed),
                  // A refused body may still be arriving: close rather than read it to its end.
                  ...(response.status === 413 ? { connection: "close" } : {})
                })
              )
            )
          )
          if (url.pathname !== "/healthz" && origin !== undefined && isPreflight(request.method, request.headers)) {
            if (!allowed) return yield* new OriginRefused({ origin })
            return HttpServerResponse.empty({ status: 204, headers: PREFLIGHT_HEADERS })
          }
          // The app's failures are typed never here, but the router fails with RouteNotFound and a path decode with HttpApiDecodeError.
          const routed = app as Effect.Effect<HttpServerResponse.HttpServerResponse, { readonly _tag?: string; readonly issues?: ReadonlyArray<{ readonly message: string }> }, HttpServerRequest.HttpServerRequest>
          // An upgrade is for a websocket endpoint only (an upgrade request never runs a plain route's action).
          const upgrading = pending.has(NodeHttpServerRequest.toIncomingMessage(request))
          if (upgrading && !routes.some((route) => route.group === "streams" && route.pattern.test(url.pathname))) {
            yield* authorizeRequest(request)
            return yield* new NoSuchEndpoint({ path: url.pathname })
          }
          return yield* Effect.catchAll(routed, (error) => {
            if (error._tag === "HttpApiDecodeError") {
              return Effect.fail(new MalformedRequest({ problem: (error.issues ?? []).map((issue) => issue.message).join("; ") || "malformed request" }))
            }
            if (error._tag !== "RouteNotFound") return Effect.fail(error as never)
            return Effect.gen(function* () {
              if (url.pathname !== "/healthz") yield* authorizeRequest(request)
              if (url.pathname.split("/").some((segment) => decodeSegment(segment) === null)) {
                return yield* new MalformedRequest({ problem: `malformed percent-encoding in the path ${url.pathname}` })
              }
              const methods = routes.filter((route) => route.pattern.test(url.pathname)).map((route) => route.method)
              if (methods.length > 0) return yield* new MethodNotAllowed({ method: request.method, path: url.pathname, allowed: methods })
              return yield* new NoSuchEndpoint({ path: url.pathname })
            })
          })
        }),
      { withContext: true }
    )

    const layer = Layer.mergeAll(HttpApiBuilder.api(WardenApi), Gateway).pipe(
      Layer.provide([HealthLive, DispatchLive, SessionsLive, ServicesLive, ArgusLive, ViewsLive, StreamsLive, OperationsLive, DashboardLive]),
      Layer.provide(AuthorizationLive),
      Layer.provideMerge(HttpApiBuilder.Router.Live),
      Layer.provideMerge(HttpApiBuilder.Middleware.layer)
    )
    const app = yield* Effect.provide(HttpApiBuilder.httpApp, layer)
    const handler = yield* Effect.provide(NodeHttpServer.makeHandler(app), NodeHttpServer.layerContext)

    const request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      // A target the URL parser refuses never reaches the router (it would be a 500 there).
      if (parseTarget(req.url) === null) {
        const body = JSON.stringify({ _tag: "MalformedRequest", problem: "malformed request target", error: "malformed request target" })
        res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" })
        res.end(body)
        return
      }
      if (isDashboardPath(new URL(req.url ?? "/", "http://localhost").pathname)) return pages.serve(req, res)
      handler(req, res)
    }
    const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      // A client that resets mid-handshake must not become an uncaught 'error'.
      socket.on("error", () => socket.destroy())
      if (parseTarget(req.url) === null) return refuseUpgrade(socket, 400, "malformed request target")
      // The app answers a refusal on this socket as on any connection; a websocket endpoint takes the socket over.
      const response = new http.ServerResponse(req)
      response.shouldKeepAlive = false
      response.assignSocket(socket as never)
      response.on("finish", () => socket.end())
      pending.set(req, { socket, head, response })
      handler(req, response)
    }
    return { request, upgrade }
  })
