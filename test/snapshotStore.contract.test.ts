import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { fileBacked } from "./support/fileBacked.js"
import {
  SNAPSHOT_VERSION,
  SnapshotError,
  SnapshotStore,
  fileSnapshotStoreLayer,
  memorySnapshotStoreLayer,
  type SessionSnapshot
} from "../src/daemon/SnapshotStore.js"

type Store = Context.Tag.Service<SnapshotStore>

/** How a layer is opened for the contract: a new empty store, and the same store opened again (a daemon restart). */
interface Opener {
  readonly fresh: () => Store
  readonly reopen: (store: Store) => Store
}

const build = (layer: Layer.Layer<SnapshotStore>): Store => Effect.runSync(Effect.provide(SnapshotStore, layer))

/** Runs `effect` as the daemon does, synchronously; a SnapshotError throws an Error that shows its bead and message. */
const runSync = <A>(effect: Effect.Effect<A, SnapshotError>): A =>
  Effect.runSync(Effect.mapError(effect, (e) => new Error(`SnapshotError of ${e.bead}: ${e.message}`)))
const failure = <A>(effect: Effect.Effect<A, SnapshotError>): SnapshotError => Effect.runSync(Effect.flip(effect))

let at = 1_700_000_000_000
/** A snapshot shaped as the daemon saves one (version, request, the actor's persisted snapshot, history). */
const snapshot = (bead: string, state = "running", extra: Partial<SessionSnapshot> = {}): SessionSnapshot => ({
  version: SNAPSHOT_VERSION,
  bead,
  request: { bead, repo: "/tmp/repo", agent: "claude", prompt: "do it", priority: 2 },
  actor: { status: "active", value: state, context: { bead, attempt: 1, attemptId: `${bead}-1`, deadlineAt: ++at }, children: {}, historyValue: {} },
  history: [
    { state: "queued", at: at - 10, attempt: 0 },
    { state, at, attempt: 1 }
  ],
  savedAt: ++at,
  ...extra
})
const loaded = (store: Store) => runSync(store.loadAll)
const beadsOf = (store: Store) => loaded(store).snapshots.map((s) => s.bead)

const contract = (label: string, opener: Opener) =>
  describe(`SnapshotStore contract: ${label}`, () => {
    it("an empty store loads nothing, and removing a bead it does not hold is not an error", () => {
      const s = opener.fresh()
      expect(loaded(s)).toEqual({ snapshots: [], refused: [] })
      runSync(s.remove("bd-none"))
      expect(loaded(s)).toEqual({ snapshots: [], refused: [] })
    })

    it("save, load, remove: what is loaded equals what was saved, through JSON", () => {
      const s = opener.fresh()
      const a = snapshot("bd-a")
      runSync(s.save(a))
      expect(loaded(s)).toEqual({ snapshots: [a], refused: [] })
      runSync(s.remove("bd-a"))
      expect(loaded(s)).toEqual({ snapshots: [], refused: [] })
    })

    it("what is stored is the JSON of what was saved: undefined fields dropped, later changes to the object not seen", () => {
      const s = opener.fresh()
      const a = snapshot("bd-json", "running", { actor: { status: "active", value: { running: "watching" }, context: { bead: "bd-json", attempt: 1, gone: undefined } } })
      runSync(s.save(a))
      ;(a.history as Array<unknown>).push({ state: "late", at: 0, attempt: 9 })
      const [back] = loaded(s).snapshots
      expect(back).toEqual(JSON.parse(JSON.stringify(snapshot("bd-json", "running", { actor: a.actor, savedAt: a.savedAt, history: a.history.slice(0, 2) }))))
      expect(Object.keys((back!.actor as { context: object }).context)).not.toContain("gone")
      // Each load is a copy: changing it changes nothing stored.
      ;(back!.history as Array<unknown>).length = 0
      expect(loaded(s).snapshots[0]!.history).toHaveLength(2)
    })

    it("a save replaces the bead's snapshot; other beads keep theirs; load is ordered by bead", () => {
      const s = opener.fresh()
      runSync(s.save(snapshot("bd-c")))
      runSync(s.save(snapshot("bd-a", "queued")))
      runSync(s.save(snapshot("bd-b")))
      const later = snapshot("bd-a", "running")
      runSync(s.save(later))
      expect(beadsOf(s)).toEqual(["bd-a", "bd-b", "bd-c"])
      expect(loaded(s).snapshots[0]).toEqual(later)
    })

    it("save and remove take effect before they return, under runSync (as the daemon runs them), and a save after a remove stores the bead again", () => {
      const s = opener.fresh()
      runSync(s.save(snapshot("bd-o", "queued")))
      runSync(s.remove("bd-o"))
      expect(beadsOf(s)).toEqual([])
      // The store keeps no memory of a removal: ordering a bead's saves and removal is the daemon's (snapshotOp).
      const again = snapshot("bd-o", "running")
      runSync(s.save(again))
      expect(loaded(s).snapshots).toEqual([again])
      runSync(s.remove("bd-o"))
      runSync(s.remove("bd-o"))
      expect(beadsOf(s)).toEqual([])
    })

    it("a snapshot of another version is refused on load, named, and stays stored until removed; the others load", () => {
      const s = opener.fresh()
      const ok = snapshot("bd-ok")
      runSync(s.save(ok))
      runSync(s.save(snapshot("bd-old", "running", { version: 0 })))
      runSync(s.save(snapshot("bd-new", "running", { version: SNAPSHOT_VERSION + 1 })))
      for (let i = 0; i < 2; i++) {
        const { snapshots, refused } = loaded(s)
        expect(snapshots).toEqual([ok])
        expect(refused.map((e) => e.bead)).toEqual(["bd-new", "bd-old"])
        for (const e of refused) expect(e).toBeInstanceOf(SnapshotError)
        expect(refused[1]!.message).toBe(`snapshot version 0, this warden reads version ${SNAPSHOT_VERSION}`)
        expect(refused[0]!.message).toBe(`snapshot version ${SNAPSHOT_VERSION + 1}, this warden reads version ${SNAPSHOT_VERSION}`)
      }
      runSync(s.remove("bd-old"))
      expect(loaded(s).refused.map((e) => e.bead)).toEqual(["bd-new"])
    })

    it("what is saved is there when the store is opened again", () => {
      const s = opener.fresh()
      const a = snapshot("bd-r1")
      const b = snapshot("bd-r2")
      runSync(s.save(b))
      runSync(s.save(a))
      runSync(s.save(snapshot("bd-r3")))
      runSync(s.remove("bd-r3"))
      expect(loaded(opener.reopen(s))).toEqual({ snapshots: [a, b], refused: [] })
    })

    it("a bead that is not a bead id is refused by save and remove, named, and nothing is stored", () => {
      const s = opener.fresh()
      for (const bead of ["../escape", "bd/a", "", ".hidden", "a".repeat(65)]) {
        for (const error of [failure(s.save(snapshot(bead))), failure(s.remove(bead))]) {
          expect(error).toBeInstanceOf(SnapshotError)
          expect(error.bead).toBe(bead)
          expect(error.message).toMatch(/^not a bead id/)
        }
      }
      expect(loaded(s)).toEqual({ snapshots: [], refused: [] })
    })

    it("a snapshot that JSON cannot carry is refused, named, and the bead keeps the snapshot it had", () => {
      const s = opener.fresh()
      const before = snapshot("bd-loop")
      runSync(s.save(before))
      const context: Record<string, unknown> = { bead: "bd-loop" }
      context.self = context
      const error = failure(s.save(snapshot("bd-loop", "running", { actor: { context } })))
      expect(error).toBeInstanceOf(SnapshotError)
      expect(error.bead).toBe("bd-loop")
      expect(error.message).toMatch(/^not JSON-safe: .*circular/i)
      expect(loaded(s).snapshots).toEqual([before])
    })
  })

// --- the layers ------------------------------------------------------------------------------

contract("memory", {
  fresh: () => build(memorySnapshotStoreLayer()),
  // The memory store lives as long as its service: opening it again is the same service.
  reopen: (store) => store
})

// A new layer on the same folder, as a restarted daemon opens it.
const stores = fileBacked("snapshots", (dir) => path.join(dir, "state", "snapshots"), (dir) => build(fileSnapshotStoreLayer(dir)))
contract("file", { fresh: stores.fresh, reopen: stores.reopen })

describe("SnapshotStore file layer: its files", () => {
  const fresh = () => {
    const dir = path.join(stores.scratch(), "snapshots")
    return { dir, store: build(fileSnapshotStoreLayer(dir)) }
  }

  it("one file per bead, <bead>.json, holding the snapshot's JSON; removed with the snapshot", () => {
    const { dir, store } = fresh()
    const a = snapshot("bd-a1.2")
    runSync(store.save(a))
    expect(fs.readdirSync(dir)).toEqual(["bd-a1.2.json"])
    expect(JSON.parse(fs.readFileSync(path.join(dir, "bd-a1.2.json"), "utf8"))).toEqual(a)
    runSync(store.remove("bd-a1.2"))
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("an unreadable file is refused, named, and left in place; the others load", () => {
    const { dir, store } = fresh()
    const ok = snapshot("bd-ok")
    runSync(store.save(ok))
    fs.writeFileSync(path.join(dir, "bd-torn.json"), '{"version":1,"bead":"bd-torn","request":{"bea')
    const { snapshots, refused } = loaded(store)
    expect(snapshots).toEqual([ok])
    expect(refused.map((e) => [e.bead, e.message.startsWith("unreadable: ")])).toEqual([["bd-torn", true]])
    expect(fs.existsSync(path.join(dir, "bd-torn.json"))).toBe(true)
  })

  it("a file that holds another bead's snapshot, or no object, is refused, named", () => {
    const { dir, store } = fresh()
    fs.writeFileSync(path.join(dir, "bd-x.json"), JSON.stringify(snapshot("bd-y")))
    fs.writeFileSync(path.join(dir, "bd-list.json"), "[]")
    const { snapshots, refused } = loaded(store)
    expect(snapshots).toEqual([])
    expect(refused.map((e) => [e.bead, e.message])).toEqual([
      ["bd-list", "not a JSON object"],
      ["bd-x", "stored as bd-x but holds the snapshot of bd-y"]
    ])
  })

  it("temporary files of an atomic write and quarantined files are not snapshots", () => {
    const { dir, store } = fresh()
    const k = snapshot("bd-k")
    runSync(store.save(k))
    fs.writeFileSync(path.join(dir, ".bd-k.json.123.abc.tmp"), "{")
    fs.writeFileSync(path.join(dir, ".bd-hidden.json"), "{")
    fs.writeFileSync(path.join(dir, "bd-q.json.corrupt-2026-01-01T00-00-00-000Z"), "{")
    expect(loaded(store)).toEqual({ snapshots: [k], refused: [] })
  })

  it("a folder removed while the daemon runs holds no snapshot, and the next save makes it again", () => {
    const { dir, store } = fresh()
    fs.rmSync(dir, { recursive: true })
    expect(loaded(store)).toEqual({ snapshots: [], refused: [] })
    runSync(store.save(snapshot("bd-back")))
    expect(beadsOf(store)).toEqual(["bd-back"])
  })
})

describe("SnapshotStore: the memory layer is a whole fake", () => {
  it("has every method the file layer has, and no other", () => {
    expect(Object.keys(build(memorySnapshotStoreLayer())).sort()).toEqual(Object.keys(build(fileSnapshotStoreLayer(path.join(stores.root, "keys")))).sort())
  })
})
