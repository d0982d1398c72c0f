import { describe, expect, it } from "vitest"
import WebSocket from "ws"
import * as HttpApi from "@effect/platform/HttpApi"
import { WardenApi } from "../src/server/apiDefinition.js"
import { makeWorkspace, useDaemon } from "./support/workspace.js"

/** The declared API (issue 14, item 6), from the outside: its OpenAPI document, its one auth check, its refusals. */
const ws = makeWorkspace()
const daemon = useDaemon(ws)

/** The routes the README's API table and its websocket sections document, by hand. */
const README_ROUTES = [
  "GET /healthz",
  "GET /metrics",
  "POST /v1/dispatch",
  "POST /v1/drain",
  "GET /v1/sessions",
  "GET /v1/sessions/{bead}",
  "POST /v1/sessions/{bead}/cancel",
  "POST /v1/sessions/{bead}/retry",
  "POST /v1/sessions/{bead}/signal",
  "POST /v1/sessions/{bead}/input",
  "GET /v1/queue",
  "GET /v1/dispatch/choices",
  "GET /v1/feed",
  "GET /v1/sessions/{bead}/terminal",
  "GET /v1/sessions/{bead}/tty",
  "GET /v1/openapi.json",
  "GET /v1/services",
  "POST /v1/services/{name}/{verb}",
  "GET /v1/argus",
  "POST /v1/argus/cycle",
  "POST /v1/dashboard/login",
  "GET /v1/dashboard/session",
  "GET /v1/machines",
  "GET /v1/machines/{name}/svg",
  "GET /v1/machines/{name}/graph",
  "GET /v1/sessions/{bead}/history",
  "GET /v1/sessions/{bead}/transcript",
  "GET /v1/history",
  "GET /v1/memory"
].sort()

/** The routes of the API definition itself, as OpenAPI writes paths. */
const declaredRoutes = (): string[] => {
  const routes: string[] = []
  HttpApi.reflect(WardenApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => routes.push(`${endpoint.method} ${endpoint.path.replace(/:([A-Za-z]+)/g, "{$1}")}`)
  })
  return routes.sort()
}

type OpenApiDocument = {
  openapi: string
  paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>
  components: { securitySchemes?: Record<string, { type: string; scheme?: string }> }
}

const openWebsocket = (url: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.on("open", () => {
      socket.close()
      resolve(101)
    })
    socket.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
    socket.on("error", reject)
  })

describe("the declared API", () => {
  it("serves /v1/openapi.json with the token only, and it lists every route the server answers, as the README does", async () => {
    expect((await fetch(`${daemon.base}/v1/openapi.json`)).status).toBe(401)
    const { status, json } = await daemon.api("GET", "/v1/openapi.json")
    expect(status).toBe(200)
    const doc = json as OpenApiDocument
    expect(doc.openapi).toMatch(/^3\./)
    const documented = Object.entries(doc.paths)
      .flatMap(([route, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${route}`))
      .sort()
    expect(documented).toEqual(declaredRoutes())
    expect(documented).toEqual(README_ROUTES)
    // Every documented route is answered (whatever the answer, never "no such endpoint"); a route not in it is.
    for (const route of documented) {
      const [method, path] = route.split(" ") as [string, string]
      const answer = await daemon.api(method, path.replace("{bead}", "bd-none"), method === "POST" ? {} : undefined)
      expect(answer.json?._tag ?? null, route).not.toBe("NoSuchEndpoint")
    }
    expect((await daemon.api("GET", "/v1/nothing")).json).toMatchObject({ _tag: "NoSuchEndpoint", error: "no such endpoint: /v1/nothing" })
    // The bearer token guards every operation but /healthz.
    expect(doc.components.securitySchemes?.bearer).toMatchObject({ type: "http", scheme: "bearer" })
    expect(doc.paths["/healthz"]!.get!.security ?? []).toEqual([])
    for (const route of documented.filter((r) => r !== "GET /healthz")) {
      const [method, path] = route.split(" ") as [string, string]
      expect(doc.paths[path]![method.toLowerCase()]!.security, route).toEqual([{ bearer: [] }])
    }
  })

  it("checks origin and token in one place for HTTP and websocket alike: the scheme case-insensitively, never a look-alike", async () => {
    const feed = `ws://127.0.0.1:${new URL(daemon.base).port}/v1/feed?topics=daemon`
    expect(await openWebsocket(feed, { authorization: `bearer ${daemon.token}` })).toBe(101)
    expect(await openWebsocket(`${feed}&token=${daemon.token}`, {})).toBe(101)
    // The platform's own bearer decoder would drop these seven characters unread.
    expect(await openWebsocket(feed, { authorization: `Basic00${daemon.token}` })).toBe(401)
    expect(await openWebsocket(feed, { authorization: `Bearer ${daemon.token}`, origin: "http://evil.example" })).toBe(403)
    // An upgrade is for the websocket endpoints only, after the same check.
    const queue = `ws://127.0.0.1:${new URL(daemon.base).port}/v1/queue`
    expect(await openWebsocket(queue, {})).toBe(401)
    expect(await openWebsocket(queue, { authorization: `Bearer ${daemon.token}` })).toBe(404)
    expect((await daemon.api("GET", "/v1/queue", undefined, { authorization: `Basic00${daemon.token}` })).status).toBe(401)
    expect((await daemon.api("GET", "/v1/queue", undefined, { authorization: `BEARER ${daemon.token}` })).status).toBe(200)
    // `?token=` is for websockets only (browsers cannot set their headers); a plain request needs the header.
    expect((await fetch(`${daemon.base}/v1/queue?token=${daemon.token}`)).status).toBe(401)
    // A path the server does not know says nothing without the token either.
    expect((await fetch(`${daemon.base}/v1/nothing`)).status).toBe(401)
    expect((await fetch(`${daemon.base}/healthz`)).status).toBe(200)
  })

  it("answers refusals with their fields and their sentence, at the statuses the README promises", async () => {
    const unknown = await daemon.api("GET", "/v1/sessions/bd-nope")
    expect(unknown).toEqual({ status: 404, json: { _tag: "UnknownBead", bead: "bd-nope", error: "no bead bd-nope in this workspace" } })
    const excess = await daemon.api("POST", "/v1/drain", { on: false, extra: 1 })
    expect(excess.status).toBe(422)
    expect(excess.json).toMatchObject({ _tag: "InvalidRequest", error: expect.stringMatching(/extra/) })
    expect((await daemon.api("POST", "/v1/drain", "{")).status).toBe(400)
    const wrongMethod = await daemon.api("DELETE", "/v1/queue")
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.json).toMatchObject({ _tag: "MethodNotAllowed", allowed: ["GET"] })
    expect((await fetch(`${daemon.base}/healthz`, { method: "POST" })).status).toBe(405)
    const badBead = await daemon.api("GET", "/v1/sessions/..%2Fx")
    expect(badBead.status).toBe(400)
    expect(badBead.json.error).toMatch(/invalid bead id "\.\.\/x"/)
    const plainFeed = await daemon.api("GET", "/v1/feed")
    expect(plainFeed.status).toBe(426)
    // An empty body schema refuses fields too (an empty Schema.Struct alone would take any).
    const retryExcess = await daemon.api("POST", "/v1/sessions/bd-nope/retry", { x: 1 })
    expect(retryExcess.status).toBe(422)
    expect(retryExcess.json.error).toMatch(/takes no fields; got x/)
    // A missing token and a wrong one are told apart.
    const missing = await fetch(`${daemon.base}/v1/queue`)
    expect((await missing.json()).error).toMatch(/^a bearer token is required/)
    const wrong = await daemon.api("GET", "/v1/queue", undefined, { authorization: "Bearer not-the-token" })
    expect(wrong).toMatchObject({ status: 401, json: { _tag: "Unauthorized", reason: "wrong", error: expect.stringMatching(/is not this daemon's/) } })
  })
})
