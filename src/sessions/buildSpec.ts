import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Schema } from "effect"
import type { ResolvedConfig } from "../config/loadConfig.js"
import { resolveProfile, type ProfileOverrides } from "../config/profiles.js"
import { renderTemplate } from "../templates/render.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import { processStartTicks } from "./supervisorLiveness.js"

/**
 * Why a dispatch request cannot become a spec: `unknown-profile`, `conflicting-options` (both a prompt and a
 * prompt file, or a command for a profile that runs none), `unreadable-prompt-file`, `missing-command` (the
 * profile runs a command and none was given), `nothing-to-do` (no prompt, prompt file, template or command).
 */
export const DispatchRefusedReason = Schema.Literal(
  "unknown-profile",
  "conflicting-options",
  "unreadable-prompt-file",
  "missing-command",
  "nothing-to-do"
)
export type DispatchRefusedReason = typeof DispatchRefusedReason.Type

/** A dispatch request that cannot become a spec; the CLI prints it as `warden: <message>`, the API answers 422. */
export class DispatchRefused extends Schema.TaggedError<DispatchRefused>()("DispatchRefused", {
  reason: DispatchRefusedReason,
  detail: Schema.String,
  /** The CLI's exit code, when it is not 1. */
  exitCode: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return this.detail
  }
}

/** This process as a foreground supervisor. */
export const foregroundSupervisor = () => ({
  pid: process.pid,
  procStart: processStartTicks(process.pid),
  host: os.hostname(),
  kind: "foreground" as const,
  startedAt: Date.now()
})

/** The dispatcher's environment as plain strings (the agent inherits it). */
export const dispatcherEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value
  return env
}

export interface DispatchRequest {
  readonly bead: string
  readonly repo: string
  readonly agent: string
  readonly template: string | undefined
  readonly prompt: string | undefined
  readonly promptFile: string | undefined
  readonly title: string | undefined
  readonly acceptance: string | undefined
  readonly command: string | undefined
  readonly overrides: ProfileOverrides
}

/**
 * Compiles a dispatch request into the spec every attempt reads. A template
 * that does not render is not an error here: preflight names it as a failed
 * check, with everything else it found. For `warden preflight` a missing
 * command is left to its `custom-command` check too.
 */
export const buildSpec = (
  env: { readonly config: ResolvedConfig; readonly paths: WorkspacePaths },
  request: DispatchRequest,
  options: { readonly forPreflight?: boolean } = {}
) =>
  Effect.gen(function* () {
    const profile = resolveProfile(env.config, request.agent, request.overrides)
    if ("error" in profile) return yield* new DispatchRefused({ reason: "unknown-profile", detail: profile.error, exitCode: 2 })
    if (request.prompt !== undefined && request.promptFile !== undefined) {
      return yield* new DispatchRefused({ reason: "conflicting-options", detail: "give --prompt or --prompt-file, not both" })
    }
    let description = request.prompt ?? ""
    if (request.promptFile !== undefined) {
      try {
        description = fs.readFileSync(request.promptFile, "utf8")
      } catch (error) {
        return yield* new DispatchRefused({ reason: "unreadable-prompt-file", detail: `cannot read --prompt-file ${request.promptFile}: ${(error as Error).message}` })
      }
    }
    // A profile that runs a command (`{command}` in its args, as `custom` does) needs one, and then no prompt.
    const runsCommand = profile.config.args.some((arg) => arg.includes("{command}"))
    const command = request.command?.trim() === "" ? undefined : request.command
    if (runsCommand && command === undefined && options.forPreflight !== true) {
      return yield* new DispatchRefused({ reason: "missing-command", detail: `profile "${profile.name}" runs a command: give --command CMD (\`command\` in the API)` })
    }
    if (!runsCommand && command !== undefined) {
      return yield* new DispatchRefused({
        reason: "conflicting-options",
        detail: `profile "${profile.name}" does not run a command ({command} is not in its args): --command is for profiles such as custom`
      })
    }
    if (request.template === undefined && description.trim() === "" && !runsCommand) {
      return yield* new DispatchRefused({ reason: "nothing-to-do", detail: "nothing to do: give --prompt TEXT, --prompt-file FILE or --template NAME" })
    }
    let prompt: DispatchSpec["prompt"] = { ok: true, text: description }
    if (request.template !== undefined) {
      const rendered = renderTemplate(
        request.template,
        {
          bead: request.bead,
          title: request.title ?? request.bead,
          description,
          repo: path.resolve(request.repo),
          acceptance: request.acceptance ?? "The change is committed and the repo's tests pass.",
          // The id differs per attempt; the agent reads it from its environment.
          attempt_id: "$WARDEN_ATTEMPT",
          status_file: env.paths.statusFile(request.bead)
        },
        { workspace: env.paths.templates, builtin: path.join(env.config.wardenHome, "templates") }
      )
      prompt = Either.isRight(rendered)
        ? { ok: true, text: rendered.right.text }
        : { ok: false, error: `template ${rendered.left.template}: ${rendered.left.message}` }
    }
    return {
      bead: request.bead,
      repo: request.repo,
      profile,
      prompt,
      templateName: request.template ?? null,
      command: command ?? null,
      env: dispatcherEnv(),
      config: env.config,
      paths: env.paths,
      supervisor: foregroundSupervisor()
    } satisfies DispatchSpec
  })
