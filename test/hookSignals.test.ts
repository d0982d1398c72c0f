import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import { endsWithQuestion, verdictFromClaudeHook, verdictFromCodexNotify } from "../src/agents/hookSignals.js"
import { reportFromLines } from "../src/agents/agentOutput.js"

describe("turn ends are not task ends", () => {
  it("a question at the end of a message is recognised, ordinary text is not", () => {
    expect(endsWithQuestion("I looked at the code.\n\nShould I also update the docs?")).toBe(true)
    expect(endsWithQuestion("Which database should I use? **")).toBe(true)
    expect(endsWithQuestion("Done? Yes: wrote hello.txt.")).toBe(false)
    expect(endsWithQuestion("Coverage: 85%")).toBe(false)
    expect(endsWithQuestion("")).toBe(false)
  })

  it("Claude Code: Stop ending the task is done with the final message; a question or a dialog notification is waiting", () => {
    expect(verdictFromClaudeHook({ hook_event_name: "Stop", last_assistant_message: "Wrote hello.txt." })).toMatchObject({
      status: "done",
      summary: "Wrote hello.txt."
    })
    expect(verdictFromClaudeHook({ hook_event_name: "Stop", last_assistant_message: "Overwrite the file?" }).status).toBe("waiting")
    expect(verdictFromClaudeHook({ hook_event_name: "Notification", notification_type: "permission_prompt", message: "Claude needs your permission" })).toMatchObject({
      status: "waiting",
      summary: "Claude needs your permission"
    })
    expect(verdictFromClaudeHook({ hook_event_name: "Notification", notification_type: "elicitation_dialog" }).status).toBe("waiting")
    expect(verdictFromClaudeHook({ hook_event_name: "Notification", notification_type: "idle_prompt" }).status).toBeNull()
    expect(verdictFromClaudeHook({ hook_event_name: "SubagentStop", last_assistant_message: "x" }).status).toBeNull()
    expect(verdictFromClaudeHook("nonsense").status).toBeNull()
  })

  it("Codex notify: only a turn whose input is the task's counts", () => {
    const isTask = (text: string) => text === "write hello.txt" || text === "y"
    const turn = (input: string[], last: string) => ({ type: "agent-turn-complete", "turn-id": "t1", "input-messages": input, "last-assistant-message": last })
    expect(verdictFromCodexNotify(turn(["write hello.txt"], "wrote hello.txt"), isTask)).toMatchObject({ status: "done", summary: "wrote hello.txt" })
    expect(verdictFromCodexNotify(turn(["Generate a short title for this conversation"], "Hello file"), isTask).status).toBeNull()
    expect(verdictFromCodexNotify(turn(["write hello.txt"], "Should I commit it?"), isTask).status).toBe("waiting")
    expect(verdictFromCodexNotify(turn(["y"], "Committed."), isTask).status).toBe("done")
    expect(verdictFromCodexNotify({ type: "something-else" }, isTask).status).toBeNull()
  })
})

describe("the payloads the real CLIs sent (test/fixtures)", () => {
  const fixture = (name: string) => JSON.parse(fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"))

  it("Claude Code's Stop and Notification payloads", () => {
    expect(verdictFromClaudeHook(fixture("claude/stop-hook.json"))).toMatchObject({ status: "done" })
    expect(verdictFromClaudeHook(fixture("claude/stop-hook-question.json")).status).toBe("waiting")
    expect(verdictFromClaudeHook(fixture("claude/notification-hook.json")).status).toBe("waiting")
    expect(verdictFromClaudeHook(fixture("claude/notification-idle-hook.json")).status).toBeNull()
  })

  it("Codex's notify for the task's turn and for its own title turn", () => {
    const turn = fixture("codex/notify-turn.json")
    const title = fixture("codex/notify-title.json")
    const prompt = turn["input-messages"][0] as string
    const isTask = (text: string) => text.trim() === prompt.trim()
    expect(verdictFromCodexNotify(turn, isTask)).toMatchObject({ status: "done", summary: turn["last-assistant-message"] })
    // The title turn quotes the prompt inside a longer input: never the task's.
    expect(title["input-messages"][0]).toContain(prompt)
    expect(verdictFromCodexNotify(title, isTask).status).toBeNull()
  })
})

describe("structured agent output", () => {
  it("reads the final message, usage and cost from claude's stream-json", () => {
    const lines = [
      '{"type":"system","subtype":"init","session_id":"s"}',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"working"}]}}',
      "not json at all",
      '{"type":"result","subtype":"success","result":"wrote hello.txt","usage":{"input_tokens":120,"output_tokens":30},"total_cost_usd":0.0012}'
    ]
    expect(reportFromLines("claude-stream-json", lines)).toEqual({
      finalMessage: "wrote hello.txt",
      usage: { input_tokens: 120, output_tokens: 30 },
      costUsd: 0.0012
    })
  })

  it("reads the final message and usage from codex exec --json", () => {
    const lines = [
      '{"type":"thread.started","thread_id":"t"}',
      '{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"printf hi > hello.txt"}}',
      '{"type":"item.completed","item":{"id":"i2","type":"agent_message","text":"wrote hello.txt"}}',
      '{"type":"turn.completed","usage":{"input_tokens":150,"cached_input_tokens":0,"output_tokens":40}}'
    ]
    expect(reportFromLines("codex-exec-json", lines)).toEqual({
      finalMessage: "wrote hello.txt",
      usage: { input_tokens: 150, cached_input_tokens: 0, output_tokens: 40 },
      costUsd: null
    })
    expect(reportFromLines("text", lines)).toBeNull()
  })
})
