import * as http from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { HealthProbes, HealthProbesLive, makeHealthProbesTest, type HealthCheck } from "../src/services/HealthProbes.js"

/**
 * Health probes against a real local HTTP server and real TCP ports: a status and a body pattern decide HTTP
 * health (an open port answering is not enough), a server that never answers is a timeout, TCP is a connect.
 */

let server: http.Server
let base = ""
let port = 0

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === "/ok") return res.writeHead(200, { "content-type": "text/plain" }).end("status: ready\n")
    if (req.url === "/fail") return res.writeHead(500).end("status: ready, but an error\n")
    if (req.url === "/starting") return res.writeHead(200).end("status: starting\n")
    if (req.url === "/created") return res.writeHead(201).end("status: ready\n")
    if (req.url === "/wedged") return void res.writeHead(200).write("status: rea")
    // /hang: headers never come
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const check = (health: HealthCheck) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const probes = yield* HealthProbes
      return yield* probes.check(health)
    }).pipe(Effect.provide(HealthProbesLive))
  )

/** A port on 127.0.0.1 that nothing listens on (just freed). */
const closedPort = async (): Promise<number> => {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
  const free = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  return free
}

describe("HealthProbes (live)", () => {
  it("HTTP 200 with a body matching the pattern is healthy", async () => {
    expect(await check({ http: `${base}/ok`, bodyPattern: "status: ready", timeoutSeconds: 3 })).toEqual({ ok: true, detail: "HTTP 200, body matches" })
    expect(await check({ http: `${base}/ok`, timeoutSeconds: 3 })).toEqual({ ok: true, detail: "HTTP 200" })
  })

  it("HTTP 500 is unhealthy, whatever its body", async () => {
    expect(await check({ http: `${base}/fail`, bodyPattern: "ready", timeoutSeconds: 3 })).toEqual({ ok: false, detail: "HTTP 500, expected 200" })
  })

  it("a body that does not match the pattern is unhealthy although the port is open and answers 200", async () => {
    expect(await check({ tcp: port, timeoutSeconds: 3 })).toMatchObject({ ok: true })
    expect(await check({ http: `${base}/starting`, bodyPattern: "status: ready", timeoutSeconds: 3 })).toEqual({
      ok: false,
      detail: "HTTP 200 but the body does not match /status: ready/"
    })
  })

  it("the expected status is the configured one", async () => {
    expect(await check({ http: `${base}/created`, expectStatus: 201, timeoutSeconds: 3 })).toMatchObject({ ok: true })
    expect(await check({ http: `${base}/ok`, expectStatus: 201, timeoutSeconds: 3 })).toEqual({ ok: false, detail: "HTTP 200, expected 201" })
  })

  it("a server that never answers is unhealthy once the timeout has passed, not before", async () => {
    const t0 = Date.now()
    const result = await check({ http: `${base}/hang`, timeoutSeconds: 0.5 })
    const took = Date.now() - t0
    expect(result).toEqual({ ok: false, detail: `no answer from ${base}/hang within 0.5s` })
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(10_000)
  })

  it("a server that sends its headers and then wedges mid-body is unhealthy once the timeout has passed", async () => {
    expect(await check({ http: `${base}/wedged`, bodyPattern: "ready", timeoutSeconds: 0.5 })).toEqual({ ok: false, detail: `no answer from ${base}/wedged within 0.5s` })
  })

  it("HTTP to a closed port is unhealthy and says the connection was refused", async () => {
    const free = await closedPort()
    expect(await check({ http: `http://127.0.0.1:${free}/ok`, timeoutSeconds: 3 })).toEqual({
      ok: false,
      detail: `GET http://127.0.0.1:${free}/ok failed: ECONNREFUSED`
    })
  })

  it("TCP: an open port is healthy, a closed one is not", async () => {
    expect(await check({ tcp: port, timeoutSeconds: 3 })).toEqual({ ok: true, detail: `127.0.0.1:${port} accepts connections` })
    const free = await closedPort()
    expect(await check({ tcp: free, timeoutSeconds: 3 })).toEqual({ ok: false, detail: `127.0.0.1:${free}: ECONNREFUSED` })
  })

  it("a check that names nothing, a bad pattern or a bad port is unhealthy and says what is wrong", async () => {
    expect(await check({ timeoutSeconds: 3 })).toEqual({ ok: false, detail: "the health check names neither http nor tcp" })
    expect(await check({ http: `${base}/ok`, bodyPattern: "(", timeoutSeconds: 3 })).toMatchObject({ ok: false, detail: expect.stringMatching(/bodyPattern \( is not a regular expression/) })
    expect(await check({ tcp: 70000, timeoutSeconds: 3 })).toEqual({ ok: false, detail: "tcp port 70000 is not a port number" })
  })
})

describe("HealthProbes (test layer)", () => {
  it("gives queued answers once each, then the standing one, and dies naming the method without any", async () => {
    const probes = makeHealthProbesTest()
    const run = () => Effect.runPromise(HealthProbes.pipe(Effect.flatMap((p) => p.check({ tcp: 1, timeoutSeconds: 1 })), Effect.provide(probes.layer)))
    await expect(run()).rejects.toThrow("HealthProbes.check: no scripted answer")
    probes.next({ ok: false, detail: "down" }, { ok: false, detail: "still down" })
    probes.always({ ok: true, detail: "up" })
    expect(await run()).toEqual({ ok: false, detail: "down" })
    expect(await run()).toEqual({ ok: false, detail: "still down" })
    expect(await run()).toEqual({ ok: true, detail: "up" })
    expect(await run()).toEqual({ ok: true, detail: "up" })
    expect(probes.calls).toHaveLength(5)
  })
})
