import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { DispatchRequests, fileDispatchRequestsLayer } from "../src/daemon/DispatchRequests.js"
import { requestOfSnapshot, snapshotOutlivedSession } from "../src/daemon/restoreChecks.js"
import type { SessionSnapshot } from "../src/daemon/SnapshotStore.js"

const snapshot = (request: unknown, actor: unknown = { status: "active", value: "queued", context: { attempt: 0, attemptId: null } }): SessionSnapshot => ({
  version: 1,
  bead: "bd-1",
  request,
  actor,
  history: [],
  savedAt: 0
})

describe("what a restart reads back is checked, never trusted", () => {
  it("a snapshot's request is decoded as a dispatch request again: a tampered one is refused, naming the field", () => {
    const good = requestOfSnapshot(snapshot({ bead: "bd-1", repo: "/r", agent: "demo", priority: 2, prompt: "x" }))
    expect(Either.isRight(good)).toBe(true)
    const bad = requestOfSnapshot(snapshot({ bead: "../../etc", repo: "/r", agent: "demo", priority: 9 }))
    expect(Either.isLeft(bad) && bad.left).toMatch(/^its request is not a dispatch request: bead: .*; priority: /)
    expect(Either.isLeft(requestOfSnapshot(snapshot("not an object")))).toBe(true)
  })

  it("a snapshot outlived its session when its actor ended or the records say this very attempt finished", () => {
    const running = { status: "active", value: { running: "working" }, context: { attempt: 1, attemptId: "att-1" } }
    const record = (over: object) => ({ lifecycle_state: "done", will_retry: false, attempt_id: "att-1", attempt: 1, ...over }) as never
    expect(snapshotOutlivedSession(snapshot({}, running), null)).toBe(false)
    expect(snapshotOutlivedSession(snapshot({}, running), record({}))).toBe(true)
    // Another attempt's final records, or one that will retry, do not end this one.
    expect(snapshotOutlivedSession(snapshot({}, running), record({ attempt_id: "att-0" }))).toBe(false)
    expect(snapshotOutlivedSession(snapshot({}, running), record({ will_retry: true }))).toBe(false)
    expect(snapshotOutlivedSession(snapshot({}, { ...running, value: "failed" }), null)).toBe(true)
  })

  it("a kept dispatch request edited on disk is refused by retry's store, naming what is wrong; a missing one is none", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-requests-"))
    try {
      const find = (bead: string) => Effect.runPromise(Effect.either(Effect.flatMap(DispatchRequests, (r) => r.find(bead)).pipe(Effect.provide(fileDispatchRequestsLayer(dir)))))
      await Effect.runPromise(Effect.flatMap(DispatchRequests, (r) => r.keep({ bead: "bd-k", repo: "/r", agent: "demo", priority: 1 })).pipe(Effect.provide(fileDispatchRequestsLayer(dir))))
      const kept = await find("bd-k")
      expect(Either.isRight(kept) && kept.right).toMatchObject({ bead: "bd-k", priority: 1 })
      expect(await find("bd-none")).toEqual(Either.right(null))
      fs.writeFileSync(path.join(dir, "bd-k.json"), JSON.stringify({ bead: "bd-k", repo: "/r", agent: "demo", priority: 1, command: 42 }))
      const tampered = await find("bd-k")
      expect(Either.isLeft(tampered) && tampered.left.reason).toBe("invalid")
      expect(Either.isLeft(tampered) && tampered.left.message).toMatch(/command/)
      fs.writeFileSync(path.join(dir, "bd-k.json"), "{torn")
      const torn = await find("bd-k")
      expect(Either.isLeft(torn) && torn.left.message).toMatch(/not JSON/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
