import { describe, expect, it } from "vitest"
import { agentLines } from "../src/sessions/sessionActors.js"

/**
 * A decision's screen evidence is the capture's last lines: after the agent exits, tmux's pane keeps its
 * rows, blank ones, and its own note ("Pane is dead"). The evidence must end with the agent's last lines.
 */
describe("the agent's lines on a captured screen", () => {
  it("drops tmux's dead-pane note and the blank rows below the agent's last line, keeping blank lines between", () => {
    const captured = ["working", "", "WARDEN_DONE", "", "", "", "Pane is dead (status 0, Wed Dec  2 07:12:36 2026)", "", ""]
    expect(agentLines(captured)).toEqual(["working", "", "WARDEN_DONE"])
    expect(agentLines(captured).slice(-10).at(-1)).toBe("WARDEN_DONE")
    expect(agentLines(["", "  ", "Pane is dead (signal 9, ...)"])).toEqual([])
    expect(agentLines(["a line that mentions Pane is dead (quoted)"])).toEqual(["a line that mentions Pane is dead (quoted)"])
  })
})
