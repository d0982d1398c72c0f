/**
 * A local stand-in for the Anthropic Messages API, as the real Claude Code CLI calls it.
 *
 * Claude Code (2.1.x) sends `POST /v1/messages?beta=true` with `stream: true` and reads
 * server-sent events. Besides the task's own conversation it makes side calls to the same
 * endpoint (interactive mode: a session-title request with no tools and a JSON-schema
 * `output_config.format`); those are answered with canned text and do not consume a step of
 * the script. At start-up it also probes `HEAD /api/hello` (connectivity check).
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export type ClaudeStep =
  | { kind: "text"; text: string }
  | { kind: "tool"; name: string; input: Record<string, unknown> }
  | { kind: "hang" }

export interface AnthropicEndpoint {
  /** e.g. http://127.0.0.1:PORT (what ANTHROPIC_BASE_URL gets) */
  readonly url: string
  /** Every request received, in order (body parsed as JSON when it is JSON, else the raw text). */
  readonly requests: ReadonlyArray<{ path: string; body: any }>
  /** How many requests of the task's main conversation consumed a step of the script (a `hang` counts). */
  readonly mainRequests: () => number
  close(): Promise<void>
}

export interface EndpointOptions {
  usage?: { input_tokens: number; output_tokens: number }
  /** Which Messages requests consume a step of the script (default: the task's main conversation, `isMainConversation`). */
  mainWhen?: (body: any) => boolean
  /** Called for every request with its classification; for debugging and tests. */
  onRequest?: (request: { method: string; path: string; body: any; kind: RequestKind }) => void
}

export type RequestKind = "main" | "side" | "count_tokens" | "models" | "probe" | "unknown"

const DEFAULT_USAGE = { input_tokens: 120, output_tokens: 30 }

/**
 * Is this Messages request part of the task's conversation, or one of Claude Code's own side
 * calls? The main conversation carries the agent's tools (Write, Bash, ...) and asks for free
 * text; side calls (title generation, classifiers, summaries) come without tools, or with a
 * structured `output_config.format`, or (older CLIs) with a tiny `max_tokens` quota probe.
 */
export const isMainConversation = (body: any): boolean => {
  if (body === null || typeof body !== "object") return false
  const tools: unknown = body.tools
  if (!Array.isArray(tools) || tools.length === 0) return false
  if (body.output_config?.format !== undefined || body.output_format !== undefined) return false
  if (typeof body.max_tokens === "number" && body.max_tokens <= 1) return false
  return tools.some((t: any) => t?.name === "Write" || t?.name === "Bash" || t?.name === "Edit" || t?.name === "Read")
}

/** A minimal value satisfying a JSON schema, for side calls that ask for structured output. */
const sampleFor = (schema: any): unknown => {
  if (schema === null || typeof schema !== "object") return "ok"
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  if ("const" in schema) return schema.const
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {}
      const props = schema.properties ?? {}
      const required: string[] = Array.isArray(schema.required) ? schema.required : Object.keys(props)
      for (const key of required) out[key] = key === "title" ? "Scripted session" : sampleFor(props[key])
      return out
    }
    case "array":
      return []
    case "boolean":
      return false
    case "number":
    case "integer":
      return 0
    case "null":
      return null
    default:
      return "ok"
  }
}

const sideText = (body: any): string => {
  const schema = body?.output_config?.format?.schema ?? body?.output_format?.schema
  return schema !== undefined ? JSON.stringify(sampleFor(schema)) : "ok"
}

type Block = { type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> }

export const startAnthropicEndpoint = (
  script: ReadonlyArray<ClaudeStep>,
  options: EndpointOptions = {}
): Promise<AnthropicEndpoint> => {
  const usage = options.usage ?? DEFAULT_USAGE
  const requests: Array<{ path: string; body: any }> = []
  let next = 0
  let consumed = 0
  let counter = 0
  const id = (prefix: string) => `${prefix}_${Date.now().toString(36)}${(++counter).toString(36).padStart(4, "0")}`

  const message = (model: string, content: Block[], stopReason: string) => ({
    id: id("msg"),
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
  })

  const sendJson = (res: http.ServerResponse, status: number, value: unknown) => {
    const text = JSON.stringify(value)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": id("req") })
    res.end(text)
  }

  const sendStream = (res: http.ServerResponse, model: string, content: Block[], stopReason: string) => {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": id("req") })
    const event = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`)
    const full = message(model, [], "")
    event("message_start", {
      message: { ...full, content: [], stop_reason: null, usage: { ...full.usage, output_tokens: 1 } }
    })
    content.forEach((block, index) => {
      if (block.type === "text") {
        event("content_block_start", { index, content_block: { type: "text", text: "" } })
        event("content_block_delta", { index, delta: { type: "text_delta", text: block.text } })
      } else {
        event("content_block_start", { index, content_block: { type: "tool_use", id: block.id, name: block.name, input: {} } })
        event("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) } })
      }
      event("content_block_stop", { index })
    })
    event("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } })
    event("message_stop", {})
    res.end()
  }

  const answer = (res: http.ServerResponse, body: any, content: Block[], stopReason: string) => {
    const model = typeof body?.model === "string" ? body.model : "claude-scripted"
    if (body?.stream === true) sendStream(res, model, content, stopReason)
    else sendJson(res, 200, message(model, content, stopReason))
  }

  const onMessages = (res: http.ServerResponse, body: any): RequestKind => {
    if (!(options.mainWhen ?? isMainConversation)(body)) {
      answer(res, body, [{ type: "text", text: sideText(body) }], "end_turn")
      return "side"
    }
    const step = script[next]
    if (step === undefined) {
      answer(res, body, [{ type: "text", text: "done" }], "end_turn")
      return "main"
    }
    next++
    consumed++
    switch (step.kind) {
      case "text":
        answer(res, body, [{ type: "text", text: step.text }], "end_turn")
        break
      case "tool":
        answer(res, body, [{ type: "tool_use", id: id("toolu"), name: step.name, input: step.input }], "tool_use")
        break
      case "hang":
        // Accept the request and never answer; close() destroys the connection.
        break
    }
    return "main"
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8")
      let body: any = raw
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw)
        } catch {
          body = raw
        }
      }
      const url = req.url ?? "/"
      const pathname = url.split("?")[0] ?? "/"
      const method = req.method ?? "GET"
      requests.push({ path: url, body })
      let kind: RequestKind
      if (method === "POST" && pathname === "/v1/messages") {
        kind = onMessages(res, body)
      } else if (method === "POST" && pathname === "/v1/messages/count_tokens") {
        kind = "count_tokens"
        sendJson(res, 200, { input_tokens: usage.input_tokens })
      } else if (pathname === "/v1/models" || pathname.startsWith("/v1/models/")) {
        kind = "models"
        const model = (name: string) => ({ type: "model", id: name, display_name: name, created_at: "2026-01-01T00:00:00Z" })
        if (pathname === "/v1/models") sendJson(res, 200, { data: [model("claude-scripted")], has_more: false, first_id: "claude-scripted", last_id: "claude-scripted" })
        else sendJson(res, 200, model(decodeURIComponent(pathname.slice("/v1/models/".length))))
      } else if (pathname === "/api/hello" || pathname === "/" || pathname === "/health") {
        // Claude Code's connectivity check (HEAD /api/hello).
        kind = "probe"
        sendJson(res, 200, { message: "hello" })
      } else {
        kind = "unknown"
        console.warn(`[anthropicEndpoint] unknown request ${method} ${url}`)
        sendJson(res, 404, { type: "error", error: { type: "not_found_error", message: `no such endpoint: ${method} ${pathname}` } })
      }
      options.onRequest?.({ method, path: url, body, kind })
    })
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        mainRequests: () => consumed,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}
