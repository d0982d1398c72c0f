/**
 * What the agent CLIs' own turn-end callbacks mean for a session. A turn end
 * is not a task end: a turn that ends asking a question, or a dialog
 * notification, is `waiting`; only a turn that ends the task is `done`.
 */

export interface HookVerdict {
  /** null: this callback says nothing about the task (ignored, with `reason`). */
  readonly status: "done" | "waiting" | null
  readonly summary: string | null
  readonly reason: string
}

const asRecord = (value: unknown): Record<string, unknown> | null =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null

/** Whether a message ends by asking something: its last non-empty line ends with `?` (markdown emphasis aside). */
export const endsWithQuestion = (message: string): boolean => {
  const lines = message.split("\n").map((line) => line.trim()).filter((line) => line !== "")
  const last = (lines[lines.length - 1] ?? "").replace(/[*_`'")\]\s]+$/, "")
  return last.endsWith("?")
}

const WAITING_NOTIFICATIONS = new Set(["permission_prompt", "elicitation_dialog"])

/** A Claude Code hook payload (JSON on the hook's stdin): `Stop` or `Notification`. */
export const verdictFromClaudeHook = (payload: unknown): HookVerdict => {
  const doc = asRecord(payload)
  if (doc === null) return { status: null, summary: null, reason: "the hook payload is not a JSON object" }
  const event = doc.hook_event_name
  if (event === "Stop" || event === "SubagentStop") {
    if (event === "SubagentStop") return { status: null, summary: null, reason: "a subagent's turn ended, not the session's" }
    const message = typeof doc.last_assistant_message === "string" ? doc.last_assistant_message : ""
    if (endsWithQuestion(message)) return { status: "waiting", summary: message, reason: "the turn ended with a question" }
    return { status: "done", summary: message === "" ? null : message, reason: "the turn ended the task" }
  }
  if (event === "Notification") {
    const type = typeof doc.notification_type === "string" ? doc.notification_type : null
    const message = typeof doc.message === "string" ? doc.message : null
    if (type !== null && WAITING_NOTIFICATIONS.has(type)) return { status: "waiting", summary: message, reason: `notification ${type}` }
    return { status: null, summary: message, reason: `notification ${type ?? "(untyped)"} does not wait for an answer` }
  }
  return { status: null, summary: null, reason: `hook event ${String(event)} is not a turn end` }
}

/**
 * A Codex `notify` payload (JSON as the program's last argument). Codex
 * notifies for every turn, including its own side turns: a turn counts only
 * when its input holds the task's prompt or an operator's answer.
 */
export const verdictFromCodexNotify = (payload: unknown, isTaskInput: (input: string) => boolean): HookVerdict => {
  const doc = asRecord(payload)
  if (doc === null) return { status: null, summary: null, reason: "the notify payload is not a JSON object" }
  if (doc.type !== "agent-turn-complete") return { status: null, summary: null, reason: `notify type ${String(doc.type)} is not a turn end` }
  const inputs = Array.isArray(doc["input-messages"]) ? doc["input-messages"].filter((m): m is string => typeof m === "string") : []
  if (!inputs.some(isTaskInput)) return { status: null, summary: null, reason: "a turn that is not the task's (its input is not the prompt or an answer)" }
  const message = typeof doc["last-assistant-message"] === "string" ? doc["last-assistant-message"] : ""
  if (endsWithQuestion(message)) return { status: "waiting", summary: message, reason: "the turn ended with a question" }
  return { status: "done", summary: message === "" ? null : message, reason: "the turn ended the task" }
}
