import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { createActor, fromPromise } from "xstate"
import { agentSessionMachine } from "../machines/agentSession.machine.js"
import { FINAL_STATES, isFinalState } from "../machines/agentSession.types.js"

const root = path.resolve(import.meta.dirname, "..")

describe("the agent session's final states", () => {
  it("are the states tagged final, and FINAL_STATES lists exactly them", () => {
    const states = Object.entries(agentSessionMachine.root.states)
    const finals = states.filter(([, node]) => node.type === "final").map(([name]) => name)
    const tagged = states.filter(([, node]) => node.tags.includes("final")).map(([name]) => name)
    expect(tagged).toEqual(finals)
    expect([...FINAL_STATES].sort()).toEqual([...finals].sort())
    expect(isFinalState("cancelled")).toBe(true)
    expect(isFinalState("cleaning")).toBe(false)
  })

  it("a snapshot says it is over with its tag", () => {
    const machine = agentSessionMachine.provide({ actors: { preflight: fromPromise(() => new Promise<never>(() => {})) } })
    const policy = { timeoutMs: 1_000, stallMs: 1_000, sources: [], retry: { maxAttempts: 1, backoffInitialMs: 1, backoffFactor: 1, backoffMaxMs: 1, retryOn: [] } }
    const actor = createActor(machine, { input: { bead: "bd-1", policy } }).start()
    expect(actor.getSnapshot().hasTag("final")).toBe(false)
    actor.send({ type: "CANCEL", at: 1 })
    expect(actor.getSnapshot().value).toBe("cancelled")
    expect(actor.getSnapshot().hasTag("final")).toBe(true)
    actor.stop()
  })

  it("are listed once: src/ and machines/ compare against FINAL_STATES or the tag, not a copy of the list", () => {
    const copies: string[] = []
    for (const dir of ["src", "machines"]) {
      for (const file of fs.readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })) {
        if (!file.endsWith(".ts")) continue
        const text = fs.readFileSync(path.join(root, dir, file), "utf8")
        for (const line of text.split("\n")) {
          if (line.includes(`"done", "failed", "timeout", "cancelled"]`)) copies.push(`${dir}/${file}: ${line.trim()}`)
        }
      }
    }
    expect(copies).toEqual([`machines/agentSession.types.ts: export const FINAL_STATES: ReadonlyArray<Outcome> = ["done", "failed", "timeout", "cancelled"]`])
  })
})
