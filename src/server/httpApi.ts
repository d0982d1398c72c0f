import { createHash, timingSafeEqual } from "node:crypto"
import * as http from "node:http"
import { Cause, Effect, Either, Exit, Option, Schema } from "effect"
import { formatIssues } from "../config/formatIssues.js"
import { isDaemonError } from "../daemon/errors.js"
import type { DaemonOperations } from "../daemon/operations.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import { DispatchBody } from "../sessions/dispatchBody.js"
import { DrainBody, EmptyBody, InputBody, SignalBody } from "./apiSchemas.js"
import { allowOrigin, answerPreflight, isPreflight } from "./cors.js"
import { statusOf } from "./errorStatus.js"
import { decodeSegment, parseTarget } from "./wireGuards.js"

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string
  ) {
    super(reason)
  }
}

const digest = (text: string) => createHash("sha256").update(text).digest()

/** Compares the bearer token in constant time (hashes first, so lengths never leak); the scheme is case-insensitive (RFC 9110). */
export const tokenMatches = (header: string | undefined, token: string): boolean => {
  const given = header === undefined ? null : /^bearer[ \t]+(.*)$/is.exec(header)
  if (given === null || token === "") return false
  return timingSafeEqual(digest(given[1]!.trim()), digest(token))
}

const readBody = (req: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > MAX_BODY_BYTES) {
      reject(new HttpError(413, `the body is ${declared} bytes; at most ${MAX_BODY_BYTES} are accepted`))
      req.resume()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const collect = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        // Not req.destroy(): that closes the socket before the 413 is written. The rest is
        // discarded, and the connection is closed once the answer is out (see send).
        req.off("data", collect)
        req.resume()
        reject(new HttpError(413, `the body is over ${MAX_BODY_BYTES} bytes`))
        return
      }
      chunks.push(chunk)
    }
    req.on("data", collect)
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const decodeBody = async <A, I>(req: http.IncomingMessage, schema: Schema.Schema<A, I>): Promise<A> => {
  const text = await readBody(req)
  let json: unknown
  try {
    json = text.trim() === "" ? {} : JSON.parse(text)
  } catch (error) {
    throw new HttpError(400, `the body is not JSON: ${(error as Error).message}`)
  }
  const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(json)
  if (Either.isLeft(decoded)) {
    throw new HttpError(422, formatIssues(decoded.left).map((i) => `${i.path === "" ? "(body)" : i.path}: ${i.message}`).join("; "))
  }
  return decoded.right
}

const send = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    // A refused body may still be arriving: close rather than read it to its end.
    ...(status === 413 ? { connection: "close" } : {})
  })
  res.end(text)
}

/** Runs an operation; a domain error it fails with is thrown as it is (the handler answers it with its status). */
const run = async <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  throw Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
}

const beadParam = (raw: string): string => {
  const bead = decodeSegment(raw)
  if (bead === null) throw new HttpError(400, `malformed percent-encoding in the bead id "${raw}"`)
  if (!BEAD_ID.test(bead)) throw new HttpError(400, `invalid bead id "${bead}": it must match ${BEAD_ID.source}`)
  return bead
}

/**
 * The daemon's HTTP API, JSON in and out, on 127.0.0.1. Everything but
 * `/healthz` needs the bearer token. Errors are `{ "error": reason }` with
 * 400 (malformed), 401 (no or wrong token), 403 (origin), 404, 405, 409
 * (conflicts with what runs), 413 (too large) or 422 (valid JSON, invalid
 * request).
 */
export const apiHandler =
  (daemon: typeof DaemonOperations.Service, options: { allowedOrigins: ReadonlyArray<string> }) =>
  async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      const url = parseTarget(req.url)
      if (url === null) throw new HttpError(400, "malformed request target")
      const method = req.method ?? "GET"
      if (url.pathname === "/healthz") {
        if (method !== "GET") throw new HttpError(405, "use GET")
        return send(res, 200, await run(daemon.health))
      }
      const origin = req.headers.origin
      if (origin !== undefined && !options.allowedOrigins.includes(origin)) throw new HttpError(403, `origin ${origin} is not allowed`)
      allowOrigin(res, origin)
      if (isPreflight(req)) return answerPreflight(res)
      if (!tokenMatches(req.headers.authorization, daemon.token)) {
        throw new HttpError(401, "a bearer token is required (Authorization: Bearer <the token in state/api-token>)")
      }
      if (url.pathname === "/metrics") {
        if (method !== "GET") throw new HttpError(405, "use GET")
        const metrics = await run(daemon.metrics)
        res.writeHead(200, { "content-type": metrics.contentType })
        res.end(metrics.body)
        return
      }
      const route = `${method} ${url.pathname}`
      if (route === "POST /v1/dispatch") {
        const body = await decodeBody(req, DispatchBody)
        return send(res, 202, await run(daemon.dispatch(body)))
      }
      if (route === "POST /v1/drain") return send(res, 200, await run(daemon.drain((await decodeBody(req, DrainBody)).on)))
      if (route === "GET /v1/sessions") return send(res, 200, await run(daemon.records))
      if (route === "GET /v1/queue") return send(res, 200, { queue: await run(daemon.queue) })
      const match = /^\/v1\/sessions\/([^/]+)(?:\/(cancel|retry|signal|input))?$/.exec(url.pathname)
      if (match !== null) {
        const bead = beadParam(match[1]!)
        const action = match[2]
        if (action === undefined) {
          if (method !== "GET") throw new HttpError(405, "use GET")
          return send(res, 200, await run(daemon.show(bead)))
        }
        if (method !== "POST") throw new HttpError(405, "use POST")
        if (action === "cancel") {
          await decodeBody(req, EmptyBody)
          return send(res, 202, await run(daemon.cancel(bead)))
        }
        if (action === "retry") {
          await decodeBody(req, EmptyBody)
          return send(res, 202, await run(daemon.retry(bead)))
        }
        if (action === "signal") {
          const body = await decodeBody(req, SignalBody)
          return send(res, 202, await run(daemon.signal(bead, body.status, body.summary ?? null, body.attempt_id ?? null)))
        }
        const body = await decodeBody(req, InputBody)
        if ((body.text === undefined || body.text === "") && (body.keys ?? []).length === 0 && !body.enter) {
          throw new HttpError(422, "nothing to send: give text or keys")
        }
        return send(res, 202, await run(daemon.input(bead, body.text, body.keys ?? [], body.enter && (body.keys ?? []).length === 0, "api")))
      }
      if (["/v1/dispatch", "/v1/drain", "/v1/sessions", "/v1/queue"].includes(url.pathname)) throw new HttpError(405, `${method} is not allowed on ${url.pathname}`)
      throw new HttpError(404, `no such endpoint: ${url.pathname}`)
    } catch (error) {
      // An answer already on its way cannot be replaced: the connection is closed instead.
      if (res.headersSent) return void res.destroy()
      if (error instanceof HttpError) return send(res, error.status, { error: error.reason })
      if (isDaemonError(error)) return send(res, statusOf(error), { error: error.message })
      send(res, 500, { error: `internal error: ${error instanceof Error ? error.message : String(error)}` })
    }
  }
