import { createWebSocketReceiver } from "@statelyai/inspect"
import { createInspectorServer } from "@statelyai/inspect/server"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, freePort, makeWorkspace } from "./support/workspace.js"

/**
 * Issue 16, point 7: with `statelyInspector.url` configured, the daemon also sends its machine events in
 * `@statelyai/inspect`'s shape to that websocket server, here Stately's own `createInspectorServer`, and a
 * receiver of Stately's package (`createWebSocketReceiver`) reads them: the session actor with its
 * definition, its states, and event types, never a context or an event's payload.
 */
const port = await freePort()
const ws = makeWorkspace({ statelyInspector: { url: `ws://127.0.0.1:${port}` } })
afterAll(() => ws.cleanup())

describe("Stately's inspector", () => {
  it("receives the tree's actors, snapshots and events, without contexts or payloads; the daemon still stops at once when it is gone", async () => {
    const server = createInspectorServer({ port, autoOpen: false })
    const received: Array<{ type: string; name?: string; definition?: string; snapshot?: { value?: unknown; context?: unknown }; event?: Record<string, unknown> }> = []
    const receiver = createWebSocketReceiver({ server: `ws://127.0.0.1:${port}` })
    const subscription = receiver.subscribe((event) => void received.push(event as never))
    const d = await ws.startDaemon()
    try {
      const repo = ws.makeRepo("repo")
      const secret = "a prompt that must not leave the daemon"
      const run = await ws.warden("dispatch", "bd-seen", "--repo", repo, "--agent", "shell", "--command", "echo x > x.txt", "--prompt", secret, "--wait")
      expect(run.status, run.stdout + run.stderr).toBe(0)
      await eventually(() => received.some((e) => e.type === "@xstate.snapshot" && e.snapshot?.value === "done"), 15_000, "the session's final snapshot at the receiver")
      const actor = received.find((e) => e.type === "@xstate.actor" && e.name === "session:bd-seen#1")!
      expect(actor).toBeDefined()
      expect(JSON.parse(actor.definition!).id).toBe("agentSession")
      expect(received.find((e) => e.type === "@xstate.actor" && e.name === "supervisor")).toBeDefined()
      const events = received.filter((e) => e.type === "@xstate.event")
      expect(events.length).toBeGreaterThan(0)
      for (const e of events) expect(Object.keys(e.event!)).toEqual(["type"])
      for (const e of received.filter((x) => x.type === "@xstate.snapshot")) expect(e.snapshot!.context).toEqual({})
      expect(JSON.stringify(received)).not.toContain(secret)
      // The inspector's server goes: the daemon keeps trying in the background and still stops at once.
      subscription.unsubscribe()
      server.stop()
      await new Promise((resolve) => setTimeout(resolve, 300))
      const stopping = Date.now()
      d.child.kill("SIGTERM")
      expect(await exited(d.child)).toBe(0)
      expect(Date.now() - stopping).toBeLessThan(5_000)
    } finally {
      subscription.unsubscribe()
      server.stop()
      d.child.kill("SIGKILL")
      await exited(d.child)
    }
  }, 60_000)
})
