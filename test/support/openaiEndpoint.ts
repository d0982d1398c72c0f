import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import * as zlib from "node:zlib"

/**
 * A local stand-in for the OpenAI Responses API as the real `codex` CLI calls it
 * (`POST /v1/responses`, answered as server-sent events). Each step of the script answers one
 * request of the task's conversation; codex's side requests (the TUI's thread-title turn) get a
 * short canned answer and consume no step.
 */
export type CodexStep =
  /** Answer with an assistant message; the turn ends. */
  | { kind: "text"; text: string }
  /**
   * Call codex's own shell tool (`exec_command` with `{ cmd }`); codex runs it and sends the output
   * back in its next request. With `escalate` (the justification shown to the user) the call asks
   * to run outside the sandbox (`sandbox_permissions: "require_escalated"`), which makes the TUI
   * show an approval prompt.
   */
  | { kind: "shell"; command: string; escalate?: string }
  /** Accept the request and never answer. */
  | { kind: "hang" }

export interface OpenAIEndpoint {
  /** Base URL for `model_providers.<id>.base_url`, e.g. `http://127.0.0.1:PORT/v1`. */
  readonly url: string
  /** Every request received, in order (body parsed as JSON when it is JSON; `kind` only for model requests). */
  readonly requests: ReadonlyArray<EndpointRequest>
  /** How many requests of the task's conversation arrived (each consumed a step, or got "done"). */
  readonly mainRequests: () => number
  close(): Promise<void>
}

export interface EndpointRequest {
  readonly path: string
  readonly body: any
  readonly method: string
  readonly headers: http.IncomingHttpHeaders
  /** For `POST /responses`: `main` (the task's conversation, consumed a step) or `side` (canned answer). */
  readonly kind?: "main" | "side"
}

export interface EndpointOptions {
  readonly usage?: { input_tokens: number; output_tokens: number }
}

/** The model name written into config.toml. Codex knows it (no "model metadata not found" warning). */
export const CODEX_TEST_MODEL = "gpt-5.5"
/** The provider id written into config.toml, and the env var that carries its API key. */
export const CODEX_TEST_PROVIDER = "warden_test"
export const CODEX_TEST_KEY_ENV = "WARDEN_TEST_OPENAI_KEY"

/** The canned answer to side requests (it becomes the thread title in the TUI). */
export const CODEX_SIDE_ANSWER = "Scripted title"

/** The start of the prompt of codex's thread-title turn (the TUI sends it after the first prompt). */
export const CODEX_TITLE_PROMPT_PREFIX = "Generate a concise, single-line task title"

/**
 * Tells the task's conversation from codex's side requests. Every model request carries a JSON
 * header `x-codex-turn-metadata`: the conversation has `request_kind: "turn"` and
 * `thread_source: "user"`; the TUI's title turn runs in a separate thread with
 * `thread_source: "thread_title"`, only an `apply_patch` tool, and a user message that starts
 * with `CODEX_TITLE_PROMPT_PREFIX`. Any of these marks a side request.
 */
export const isCodexSideRequest = (headers: http.IncomingHttpHeaders, body: any): boolean => {
  const raw = headers["x-codex-turn-metadata"]
  if (typeof raw === "string") {
    try {
      const meta = JSON.parse(raw) as { request_kind?: unknown; thread_source?: unknown }
      if (typeof meta.request_kind === "string" && meta.request_kind !== "turn") return true
      if (typeof meta.thread_source === "string" && meta.thread_source !== "user") return true
    } catch {
      // fall through to the body
    }
  }
  const tools: unknown = body?.tools
  if (!Array.isArray(tools) || !tools.some((tool: any) => tool?.name === "exec_command")) return true
  const input: unknown = body?.input
  const lastUser = Array.isArray(input)
    ? [...input].reverse().find((item: any) => item?.type === "message" && item?.role === "user")
    : undefined
  const text = lastUser?.content?.[0]?.text
  return typeof text === "string" && text.startsWith(CODEX_TITLE_PROMPT_PREFIX)
}

const decodeBody = (raw: Buffer, encoding: string | undefined): string => {
  switch (encoding) {
    case "gzip":
      return zlib.gunzipSync(raw).toString("utf8")
    case "deflate":
      return zlib.inflateSync(raw).toString("utf8")
    case "br":
      return zlib.brotliDecompressSync(raw).toString("utf8")
    default:
      return raw.toString("utf8")
  }
}

export const startOpenAIEndpoint = (
  script: ReadonlyArray<CodexStep>,
  options: EndpointOptions = {}
): Promise<OpenAIEndpoint> => {
  const usage = options.usage ?? { input_tokens: 150, output_tokens: 40 }
  const requests: Array<EndpointRequest> = []
  let next = 0
  let main = 0
  let ids = 0
  const newId = (prefix: string) => `${prefix}_warden${Date.now().toString(36)}${(ids++).toString(36)}`

  const stream = (res: http.ServerResponse, model: string, build: (emit: (type: string, data: object) => void) => object[]) => {
    const responseId = newId("resp")
    const createdAt = Math.floor(Date.now() / 1000)
    let sequence = 0
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
    const emit = (type: string, data: object) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...data })}\n\n`)
    const shell = { id: responseId, object: "response", created_at: createdAt, model, status: "in_progress", output: [] as object[] }
    emit("response.created", { response: shell })
    emit("response.in_progress", { response: shell })
    const output = build(emit)
    emit("response.completed", {
      response: {
        ...shell,
        status: "completed",
        output,
        usage: {
          input_tokens: usage.input_tokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: usage.output_tokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: usage.input_tokens + usage.output_tokens
        }
      }
    })
    res.end()
  }

  const textItems = (text: string) => (emit: (type: string, data: object) => void) => {
    const item_id = newId("msg")
    const part = { type: "output_text", text: "", annotations: [] }
    emit("response.output_item.added", {
      output_index: 0,
      item: { id: item_id, type: "message", status: "in_progress", role: "assistant", content: [] }
    })
    emit("response.content_part.added", { item_id, output_index: 0, content_index: 0, part })
    // Two deltas, as a real stream splits its text.
    const cut = Math.ceil(text.length / 2)
    for (const delta of [text.slice(0, cut), text.slice(cut)]) {
      if (delta.length > 0) emit("response.output_text.delta", { item_id, output_index: 0, content_index: 0, delta })
    }
    emit("response.output_text.done", { item_id, output_index: 0, content_index: 0, text })
    emit("response.content_part.done", { item_id, output_index: 0, content_index: 0, part: { ...part, text } })
    const item = {
      id: item_id,
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [] }]
    }
    emit("response.output_item.done", { output_index: 0, item })
    return [item]
  }

  const shellItems = (command: string, escalate?: string) => (emit: (type: string, data: object) => void) => {
    const item_id = newId("fc")
    const call_id = newId("call")
    const args = JSON.stringify(
      escalate === undefined ? { cmd: command } : { cmd: command, sandbox_permissions: "require_escalated", justification: escalate }
    )
    emit("response.output_item.added", {
      output_index: 0,
      item: { id: item_id, type: "function_call", status: "in_progress", call_id, name: "exec_command", arguments: "" }
    })
    emit("response.function_call_arguments.delta", { item_id, output_index: 0, delta: args })
    emit("response.function_call_arguments.done", { item_id, output_index: 0, arguments: args })
    const item = { id: item_id, type: "function_call", status: "completed", call_id, name: "exec_command", arguments: args }
    emit("response.output_item.done", { output_index: 0, item })
    return [item]
  }

  const json = (res: http.ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { "content-type": "application/json" })
    res.end(JSON.stringify(value))
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const pathname = new URL(req.url ?? "/", "http://127.0.0.1").pathname
      let text = ""
      let body: any = undefined
      try {
        text = decodeBody(Buffer.concat(chunks), req.headers["content-encoding"] as string | undefined)
        body = text.length > 0 ? JSON.parse(text) : undefined
      } catch {
        body = text
      }
      const model = typeof body?.model === "string" ? body.model : CODEX_TEST_MODEL
      const method = req.method ?? "GET"

      if (method === "POST" && /\/responses$/.test(pathname)) {
        const kind = isCodexSideRequest(req.headers, body) ? "side" : "main"
        requests.push({ path: pathname, body, method, headers: req.headers, kind })
        if (kind === "side") return stream(res, model, textItems(CODEX_SIDE_ANSWER))
        main++
        const step: CodexStep = script[next] ?? { kind: "text", text: "done" }
        if (next < script.length) next++
        switch (step.kind) {
          case "text":
            return stream(res, model, textItems(step.text))
          case "shell":
            return stream(res, model, shellItems(step.command, step.escalate))
          case "hang":
            return // never answered; close() drops the connection
        }
      }
      requests.push({ path: pathname, body, method, headers: req.headers })
      if (method === "GET" && /\/models$/.test(pathname)) {
        return json(res, 200, {
          object: "list",
          data: [{ id: CODEX_TEST_MODEL, object: "model", created: 0, owned_by: "warden-test" }],
          models: []
        })
      }
      process.stderr.write(`[openaiEndpoint] unexpected ${req.method} ${req.url}\n`)
      return json(res, 404, { error: { message: `no route for ${req.method} ${pathname}`, type: "invalid_request_error" } })
    })
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        requests,
        mainRequests: () => main,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}

const tomlString = (value: string) => JSON.stringify(value)

/**
 * Writes `$CODEX_HOME/config.toml` for an offline codex talking to the local endpoint: a
 * `model_providers` entry selected by `model_provider`, folder trust for `trustedDirs`, an
 * optional `notify` program, and the settings that keep codex offline and quiet. The API key is
 * read from the env var `CODEX_TEST_KEY_ENV` (any value).
 */
export const writeCodexHome = (
  dir: string,
  opts: { endpointUrl: string; trustedDirs?: string[]; notify?: string[] }
): void => {
  fs.mkdirSync(dir, { recursive: true })
  const lines: string[] = [
    `model = ${tomlString(CODEX_TEST_MODEL)}`,
    `model_provider = ${tomlString(CODEX_TEST_PROVIDER)}`,
    `# no request to api.github.com for a newer release`,
    `check_for_update_on_startup = false`
  ]
  if (opts.notify !== undefined) {
    lines.push(`# run per finished turn with the turn's JSON as its last argument`, `notify = [${opts.notify.map(tomlString).join(", ")}]`)
  }
  lines.push(
    "",
    `[model_providers.${CODEX_TEST_PROVIDER}]`,
    `name = "Warden test endpoint"`,
    `base_url = ${tomlString(opts.endpointUrl)}`,
    `wire_api = "responses"`,
    `# the API key is read from this env var (any value)`,
    `env_key = ${tomlString(CODEX_TEST_KEY_ENV)}`,
    `# a failed request or stream is reported at once, not retried`,
    `request_max_retries = 0`,
    `stream_max_retries = 0`,
    "",
    `# no analytics events to chatgpt.com`,
    `[analytics]`,
    `enabled = false`,
    "",
    `[feedback]`,
    `enabled = false`,
    "",
    `[features]`,
    `# no git clone of github.com/openai/plugins.git, no chatgpt.com plugin/app lookups`,
    `plugins = false`,
    `remote_plugin = false`,
    `apps = false`,
    `# no detached app-server daemon (the TUI is also run with --no-daemon)`,
    `daemon_auto_start = false`,
    `# no detached "bash -lc" at startup that sources ~/.bashrc and can outlive a killed session`,
    `shell_snapshot = false`,
    `# an unreachable endpoint fails the turn instead of "Reconnecting... waiting for network" forever`,
    `unbounded_connection_retries = false`,
    "",
    `[tui]`,
    `# what codex writes itself after its first start`,
    `screen_reader_detection_done = true`,
    `show_tooltips = false`,
    "",
    `[tui.model_availability_nux]`,
    `"gpt-6.1-sol" = 1`,
    "",
    `# skips the "Meet GPT-6 Sol / Try new model" dialog at startup`,
    `[notice.model_migrations]`,
    `${tomlString(CODEX_TEST_MODEL)} = "gpt-6-sol"`
  )
  for (const trusted of opts.trustedDirs ?? []) {
    lines.push("", `[projects.${tomlString(path.resolve(trusted))}]`, `trust_level = "trusted"`)
  }
  fs.writeFileSync(path.join(dir, "config.toml"), lines.join("\n") + "\n")
}
