import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { makeWorkspace, useDaemon } from "./support/workspace.js"

/** Random bodies at every endpoint of the built daemon: never a 5xx, never a crash, never a session started. */
const ws = makeWorkspace()
const daemon = useDaemon(ws)

const routes = [
  ["POST", "/v1/dispatch"],
  ["POST", "/v1/drain"],
  ["GET", "/v1/sessions"],
  ["GET", "/v1/queue"],
  ["GET", "/v1/sessions/BEAD"],
  ["POST", "/v1/sessions/BEAD/cancel"],
  ["POST", "/v1/sessions/BEAD/retry"],
  ["POST", "/v1/sessions/BEAD/signal"],
  ["POST", "/v1/sessions/BEAD/input"],
  ["GET", "/metrics"],
  ["GET", "/healthz"]
] as const

const body = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.record(
    {
      bead: fc.oneof(fc.string(), fc.constantFrom("bd-1", "../x", "", ".hidden")),
      repo: fc.oneof(fc.string(), fc.constantFrom("/", "/usr", path.join(ws.dir, "no-such-repo"), "relative")),
      agent: fc.oneof(fc.string(), fc.constantFrom("shell", "demo", "custom")),
      priority: fc.oneof(fc.integer(), fc.double(), fc.string()),
      status: fc.oneof(fc.string(), fc.constantFrom("done", "failed", "waiting")),
      text: fc.string(),
      keys: fc.array(fc.string()),
      prompt: fc.string()
    },
    { requiredKeys: [] }
  ).map((value) => JSON.stringify(value)),
  fc.string(),
  fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes).toString("latin1"))
)

describe("the API under random input", () => {
  it("answers every request with a status below 500 and keeps running", async () => {
    const before = fs.existsSync(path.join(ws.workspace, "state", "runs")) ? fs.readdirSync(path.join(ws.workspace, "state", "runs")) : []
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("bd-1", "..%2Fx", "%00", "a".repeat(70))),
        body,
        fc.boolean(),
        async ([method, route], bead, payload, withToken) => {
          const response = await fetch(`${daemon.base}${route.replace("BEAD", encodeURIComponent(bead))}`, {
            method,
            headers: withToken ? { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" } : {},
            ...(method === "POST" ? { body: payload } : {})
          })
          await response.arrayBuffer()
          expect(response.status, `${method} ${route} ${payload}`).toBeLessThan(500)
          if (!withToken && route !== "/healthz") expect(response.status).toBe(401)
        }
      ),
      { numRuns: 300 }
    )
    expect((await fetch(`${daemon.base}/healthz`)).status).toBe(200)
    expect(daemon.child.exitCode).toBeNull()
    // No random body started a session: no repo the strategies can name exists under an allowed root.
    const after = fs.existsSync(path.join(ws.workspace, "state", "runs")) ? fs.readdirSync(path.join(ws.workspace, "state", "runs")) : []
    expect(after).toEqual(before)
  })
})
