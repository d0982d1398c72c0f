import * as net from "node:net"
import { Context, Effect, Layer } from "effect"

/** One probe of a service's health: HTTP (status and, optionally, a body pattern) or a TCP connect. */
export interface HealthCheck {
  /** A URL to GET; healthy only with the expected status and, when given, a body matching `bodyPattern`. */
  readonly http?: string
  /** Default 200. */
  readonly expectStatus?: number
  /** A regular expression the body must match: an open port, even one answering 200, is not health by itself. */
  readonly bodyPattern?: string
  /** A port on 127.0.0.1 that must accept a connection. */
  readonly tcp?: number
  /** The whole probe (connect, headers and body) must finish within this. */
  readonly timeoutSeconds: number
}

/** The verdict of one probe; `detail` says in words what was seen ("HTTP 500, expected 200", "no answer within 3s"). */
export interface HealthResult {
  readonly ok: boolean
  readonly detail: string
}

/** Health probes of supervised services. A probe never fails: what goes wrong is an unhealthy verdict with its reason. */
export class HealthProbes extends Context.Tag("warden/HealthProbes")<
  HealthProbes,
  {
    readonly check: (health: HealthCheck) => Effect.Effect<HealthResult>
  }
>() {}

/** A body longer than this is cut before the pattern is matched (a health page is small). */
const MAX_BODY_BYTES = 1_000_000

const errorText = (error: unknown): string => {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error)
}

const readBody = async (response: Response): Promise<string> => {
  if (response.body === null) return ""
  const reader = response.body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  while (size < MAX_BODY_BYTES) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    size += value.byteLength
  }
  await reader.cancel().catch(() => undefined)
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString("utf8")
}

const checkHttp = (url: string, health: HealthCheck): Effect.Effect<HealthResult> => {
  const expect = health.expectStatus ?? 200
  let pattern: RegExp | null = null
  if (health.bodyPattern !== undefined) {
    try {
      pattern = new RegExp(health.bodyPattern)
    } catch (error) {
      return Effect.succeed({ ok: false, detail: `the bodyPattern ${health.bodyPattern} is not a regular expression: ${(error as Error).message}` })
    }
  }
  const timeoutMs = health.timeoutSeconds * 1000
  return Effect.tryPromise({
    try: async (signal) => {
      const timeout = AbortSignal.timeout(timeoutMs)
      const response = await fetch(url, { signal: AbortSignal.any([signal, timeout]), redirect: "manual" })
      const body = await readBody(response)
      return { status: response.status, body }
    },
    catch: (error) => error
  }).pipe(
    Effect.map(({ status, body }): HealthResult => {
      if (status !== expect) return { ok: false, detail: `HTTP ${status}, expected ${expect}` }
      if (pattern !== null && !pattern.test(body)) return { ok: false, detail: `HTTP ${status} but the body does not match /${health.bodyPattern}/` }
      return { ok: true, detail: pattern === null ? `HTTP ${status}` : `HTTP ${status}, body matches` }
    }),
    Effect.catchAll((error) =>
      Effect.succeed<HealthResult>({
        ok: false,
        detail:
          (error as Error).name === "TimeoutError" ? `no answer from ${url} within ${health.timeoutSeconds}s` : `GET ${url} failed: ${errorText(error)}`
      })
    )
  )
}

const checkTcp = (port: number, timeoutSeconds: number): Effect.Effect<HealthResult> =>
  Effect.async<HealthResult>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const done = (result: HealthResult) => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(result))
    }
    const timer = setTimeout(() => done({ ok: false, detail: `no connection to 127.0.0.1:${port} within ${timeoutSeconds}s` }), timeoutSeconds * 1000)
    socket.once("connect", () => done({ ok: true, detail: `127.0.0.1:${port} accepts connections` }))
    socket.once("error", (error: NodeJS.ErrnoException) => done({ ok: false, detail: `127.0.0.1:${port}: ${error.code ?? error.message}` }))
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const checkLive = (health: HealthCheck): Effect.Effect<HealthResult> => {
  if (!(health.timeoutSeconds > 0)) return Effect.succeed({ ok: false, detail: `timeoutSeconds must be positive, not ${health.timeoutSeconds}` })
  if (health.http !== undefined) return checkHttp(health.http, health)
  if (health.tcp !== undefined) {
    if (!Number.isInteger(health.tcp) || health.tcp < 1 || health.tcp > 65535) return Effect.succeed({ ok: false, detail: `tcp port ${health.tcp} is not a port number` })
    return checkTcp(health.tcp, health.timeoutSeconds)
  }
  return Effect.succeed({ ok: false, detail: "the health check names neither http nor tcp" })
}

/** The live layer: real HTTP requests and TCP connections. */
export const HealthProbesLive = Layer.succeed(HealthProbes, HealthProbes.of({ check: checkLive }))

/**
 * The test layer: answers as the test scripts them. Answers queued with `next` are given once each, in order;
 * after them, the one set with `always`; with neither, `check` dies naming the method.
 */
export const makeHealthProbesTest = () => {
  const queued: Array<HealthResult> = []
  let standing: HealthResult | null = null
  const calls: Array<HealthCheck> = []
  const service = HealthProbes.of({
    check: (health) =>
      Effect.suspend(() => {
        calls.push(health)
        const answer = queued.shift() ?? standing
        return answer === null ? Effect.die(new Error("HealthProbes.check: no scripted answer")) : Effect.succeed(answer)
      })
  })
  return {
    service,
    layer: Layer.succeed(HealthProbes, service),
    calls,
    next: (...answers: ReadonlyArray<HealthResult>) => {
      queued.push(...answers)
    },
    always: (answer: HealthResult | null) => {
      standing = answer
    }
  }
}
