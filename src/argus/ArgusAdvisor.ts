import * as os from "node:os"
import { Context, Data, Effect, Layer } from "effect"
import { Processes } from "../processes/Processes.js"
import type { LlmPrompt } from "./llmContract.js"

/** Why the model gave no answer to read: `down` (unreachable, an HTTP error), `slow` (past the timeout), `malformed` (no text in its reply), `unset` (no key). */
export class AdvisorFailed extends Data.TaggedError("AdvisorFailed")<{
  readonly reason: "down" | "slow" | "malformed" | "unset"
  readonly detail: string
}> {
  override get message(): string {
    return this.detail
  }
}

/** Argus's model, asked for advice: its answer's text, untrusted. */
export class ArgusAdvisor extends Context.Tag("warden/ArgusAdvisor")<
  ArgusAdvisor,
  {
    /** What this advisor is, for the audit (`messages-api claude-haiku-4-5 at http://...`), or null when none is configured. */
    readonly describe: string | null
    readonly ask: (prompt: LlmPrompt) => Effect.Effect<string, AdvisorFailed>
  }
>() {}

export interface AdvisorConfig {
  readonly via: "messages-api" | "claude-cli"
  readonly baseUrl?: string | undefined
  readonly model: string
  readonly apiKeyEnv: string
  readonly timeoutSeconds: number
  readonly command: string
}

/** Where the Messages API is: the config's, else `ANTHROPIC_BASE_URL`, else Anthropic's. */
export const advisorBaseUrl = (config: AdvisorConfig, env: Record<string, string | undefined>): string =>
  (config.baseUrl ?? (env.ANTHROPIC_BASE_URL !== undefined && env.ANTHROPIC_BASE_URL !== "" ? env.ANTHROPIC_BASE_URL : "https://api.anthropic.com")).replace(/\/+$/, "")

/** The answer's words kept in an error: bounded, and never the key. */
const clip = (text: string, key: string): string => {
  const cut = key === "" ? text : text.split(key).join("<redacted>")
  return cut.length > 300 ? `${cut.slice(0, 300)}...` : cut
}

const MAX_TOKENS = 1_024

/** Why there is no key: the variable the config names is not in the daemon's own environment (a client's does not count). */
export const missingKey = (config: Pick<AdvisorConfig, "apiKeyEnv">): string =>
  `the environment variable ${config.apiKeyEnv} (the API key, argus.llm.apiKeyEnv) is not set in the daemon's environment: set it where the daemon starts (its systemd unit's EnvironmentFile) and restart it`

/** The Messages API (`POST {baseUrl}/v1/messages`, not streamed), the key in `x-api-key`. */
const messagesApi = (config: AdvisorConfig, env: Record<string, string | undefined>): ArgusAdvisor["Type"] => {
  const base = advisorBaseUrl(config, env)
  const timeoutMs = config.timeoutSeconds * 1000
  return {
    describe: `messages-api ${config.model} at ${base}`,
    ask: (prompt) =>
      Effect.gen(function* () {
        const key = env[config.apiKeyEnv] ?? ""
        if (key === "") return yield* new AdvisorFailed({ reason: "unset", detail: missingKey(config) })
        const response = yield* Effect.tryPromise({
          try: async (signal) => {
            const answer = await fetch(`${base}/v1/messages`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01" },
              body: JSON.stringify({
                model: config.model,
                max_tokens: MAX_TOKENS,
                system: prompt.system,
                messages: [{ role: "user", content: prompt.user }]
              }),
              redirect: "manual",
              signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
            })
            return { status: answer.status, body: await answer.text() }
          },
          catch: (error) =>
            (error as Error).name === "TimeoutError"
              ? new AdvisorFailed({ reason: "slow", detail: `no answer within ${config.timeoutSeconds} s` })
              : new AdvisorFailed({
                  reason: "down",
                  detail: `cannot reach ${base}: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`
                })
        })
        if (response.status !== 200) return yield* new AdvisorFailed({ reason: "down", detail: `HTTP ${response.status} from POST ${base}/v1/messages: ${clip(response.body, key)}` })
        return yield* textOfMessage(response.body)
      })
  }
}

/** The text blocks of a Messages API reply, joined. */
export const textOfMessage = (body: string): Effect.Effect<string, AdvisorFailed> =>
  Effect.try({
    try: () => {
      const content = (JSON.parse(body) as { content?: unknown }).content
      if (!Array.isArray(content)) throw new Error("no content")
      const texts = content.filter((b): b is { type: "text"; text: string } => b?.type === "text" && typeof b.text === "string").map((b) => b.text)
      if (texts.length === 0) throw new Error("no text block")
      return texts.join("\n")
    },
    catch: (error) => new AdvisorFailed({ reason: "malformed", detail: `the reply is not a message with text: ${(error as Error).message}` })
  })

/**
 * `claude -p` as the seed asks it: no tools, no session kept, `--bare` (no hooks, no CLAUDE.md, no
 * keychain), the question on stdin and the key in the environment (never on the command line), run in
 * the system's temp folder so no project's files are read; the process group is killed at the timeout.
 */
const claudeCli = (config: AdvisorConfig, env: Record<string, string | undefined>, processes: Processes["Type"]): ArgusAdvisor["Type"] => ({
  describe: `claude-cli ${config.model} (${config.command})`,
  ask: (prompt) =>
    Effect.gen(function* () {
      const key = env[config.apiKeyEnv] ?? ""
      const childEnv: Record<string, string | undefined> = { ...env, ANTHROPIC_API_KEY: key === "" ? env.ANTHROPIC_API_KEY : key }
      if (config.baseUrl !== undefined) childEnv.ANTHROPIC_BASE_URL = config.baseUrl
      const args = ["-p", "--bare", "--tools", "", "--no-session-persistence", "--output-format", "json", "--model", config.model]
      const run = yield* processes
        .run(config.command, args, {
          cwd: os.tmpdir(),
          env: childEnv,
          stdin: `${prompt.system}\n\n${prompt.user}`,
          timeoutMs: config.timeoutSeconds * 1000,
          tailChars: 2_000
        })
        .pipe(Effect.mapError((error) => new AdvisorFailed({ reason: "down", detail: `cannot run ${config.command}: ${error.message}` })))
      if (run.timedOut) return yield* new AdvisorFailed({ reason: "slow", detail: `${config.command} gave no answer within ${config.timeoutSeconds} s` })
      if (run.exitCode !== 0) return yield* new AdvisorFailed({ reason: "down", detail: `${config.command} exited with ${run.exitCode ?? run.signal}: ${clip(run.outputTail.trim(), key)}` })
      return yield* Effect.try({
        try: () => {
          const result = JSON.parse(run.stdout) as { result?: unknown; is_error?: unknown }
          if (result.is_error === true || typeof result.result !== "string") throw new Error(clip(run.stdout, key))
          return result.result
        },
        catch: (error) => new AdvisorFailed({ reason: "malformed", detail: `${config.command}'s output is not its JSON result: ${(error as Error).message}` })
      })
    })
})

/** No model: Argus decides by its rules alone. */
export const noAdvisor: ArgusAdvisor["Type"] = {
  describe: null,
  ask: () => Effect.fail(new AdvisorFailed({ reason: "unset", detail: "no LLM decider is configured" }))
}

/** The advisor the config names (`argus.decider: "llm"` with `argus.llm`), or none. */
export const advisorLayer = (decider: "rules" | "llm", config: AdvisorConfig, env: Record<string, string | undefined>) =>
  Layer.effect(
    ArgusAdvisor,
    Effect.gen(function* () {
      if (decider === "rules") return noAdvisor
      if (config.via === "messages-api") return messagesApi(config, env)
      return claudeCli(config, env, yield* Processes)
    })
  )
