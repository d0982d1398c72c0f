import type { AgentReport } from "../../machines/agentSession.types.js"

/** How an agent's output is structured: plain text, or one JSON event per line. */
export type OutputFormat = "text" | "claude-stream-json" | "codex-exec-json"

const asRecord = (value: unknown): Record<string, unknown> | null =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null

const parseJsonLine = (line: string): Record<string, unknown> | null => {
  const text = line.trim()
  if (!text.startsWith("{")) return null
  try {
    return asRecord(JSON.parse(text))
  } catch {
    // a line that looks like JSON but is not is plain agent output
    return null
  }
}

/** `claude -p --output-format stream-json --verbose`: the `result` event has the final message, usage and cost. */
const fromClaudeEvent = (event: Record<string, unknown>): AgentReport | null => {
  if (event.type === "result") {
    return {
      finalMessage: typeof event.result === "string" ? event.result : null,
      usage: asRecord(event.usage),
      costUsd: typeof event.total_cost_usd === "number" ? event.total_cost_usd : null
    }
  }
  if (event.type === "assistant") {
    const message = asRecord(event.message)
    const content = Array.isArray(message?.content) ? message!.content : []
    const text = content
      .map((block) => asRecord(block))
      .filter((block) => block?.type === "text" && typeof block.text === "string")
      .map((block) => block!.text as string)
      .join("")
    return text === "" ? null : { finalMessage: text }
  }
  return null
}

/** `codex exec --json`: agent messages arrive as completed items, usage with the completed turn. */
const fromCodexEvent = (event: Record<string, unknown>): AgentReport | null => {
  if (event.type === "item.completed") {
    const item = asRecord(event.item)
    if (item?.type === "agent_message" && typeof item.text === "string") return { finalMessage: item.text }
    return null
  }
  if (event.type === "turn.completed") return { usage: asRecord(event.usage) }
  return null
}

/** What one line of the agent's output reports, if anything. */
export const reportFromLine = (format: OutputFormat, line: string): AgentReport | null => {
  if (format === "text") return null
  const event = parseJsonLine(line)
  if (event === null) return null
  return format === "claude-stream-json" ? fromClaudeEvent(event) : fromCodexEvent(event)
}

/** Later reports win field by field; a field a report does not carry keeps its earlier value. */
export const mergeReports = (earlier: AgentReport | null, later: AgentReport | null): AgentReport | null => {
  if (later === null) return earlier
  if (earlier === null) return later
  return {
    finalMessage: later.finalMessage ?? earlier.finalMessage ?? null,
    usage: later.usage ?? earlier.usage ?? null,
    costUsd: later.costUsd ?? earlier.costUsd ?? null
  }
}

/** The report of a whole transcript (lines already stripped of terminal escapes). */
export const reportFromLines = (format: OutputFormat, lines: Iterable<string>): AgentReport | null => {
  let report: AgentReport | null = null
  for (const line of lines) report = mergeReports(report, reportFromLine(format, line))
  return report
}
