import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Schema } from "effect"
import { formatIssues } from "./formatIssues.js"
import { ConfigSchema, type WardenConfig } from "./schema.js"
import { defaultWorkspace, expandHome, wardenHome } from "../workspace/paths.js"

/**
 * Why the config was refused: `unreadable` (missing, a directory, no permission: not a fault in its
 * contents), `not-json` (its text is not JSON), `invalid` (JSON that the schema refuses).
 */
export const ConfigErrorReason = Schema.Literal("unreadable", "not-json", "invalid")
export type ConfigErrorReason = typeof ConfigErrorReason.Type

/** The config file is missing, unreadable or invalid; `issues` (its detail) name each path and field. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  reason: ConfigErrorReason,
  issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    if (this.reason === "unreadable") return `cannot read the config ${this.file}: ${this.issues[0]?.message ?? "unreadable"}`
    return `invalid config ${this.file}:\n${this.issues.map((i) => `  at ${i.path || "(root)"}: ${i.message}`).join("\n")}`
  }
}

/** The config after decoding, with what the environment and the command line add. */
export interface ResolvedConfig extends WardenConfig {
  readonly file: string | null
  readonly workspaceDir: string
  readonly allowRootResolved: boolean
  readonly wardenHome: string
}

export interface ConfigLocation {
  readonly workspace?: string | undefined
  readonly config?: string | undefined
  readonly env?: NodeJS.ProcessEnv
}

const decode = Schema.decodeUnknownEither(ConfigSchema, { errors: "all", onExcessProperty: "error" })

const readJson = (file: string): Either.Either<unknown, ConfigError> => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (error as Error).message
    return Either.left(new ConfigError({ file, reason: "unreadable", issues: [{ path: "", message: why }] }))
  }
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(new ConfigError({ file, reason: "not-json", issues: [{ path: "", message: `not JSON: ${(error as Error).message}` }] }))
  }
}

const validate = (file: string, raw: unknown): Either.Either<WardenConfig, ConfigError> =>
  Either.mapLeft(decode(raw), (error) =>
    new ConfigError({
      file,
      reason: "invalid",
      issues: formatIssues(error)
    })
  )

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Field by field: objects merge key by key, anything else (arrays included) replaces what was there. */
const mergeFields = (base: unknown, over: unknown): unknown => {
  if (!isPlainObject(base) || !isPlainObject(over)) return over
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) out[key] = key in base ? mergeFields(base[key], value) : value
  return out
}

export const builtinConfigFile = (): string => path.join(wardenHome(), "config", "warden.json")

/**
 * Loads the built-in defaults, then the operator's file over them (a profile
 * named like a built-in one is merged into it field by field; objects such as
 * `completion` merge key by key, lists replace). The file is `--config`, else `WARDEN_CONFIG`, else
 * `<workspace>/warden.json` when it exists.
 */
export const loadConfigSync = (where: ConfigLocation = {}): Either.Either<ResolvedConfig, ConfigError> => {
  const env = where.env ?? process.env
  const builtinFile = builtinConfigFile()
  const builtin = readJson(builtinFile)
  if (Either.isLeft(builtin)) return Either.left(builtin.left)
  const builtinRaw = builtin.right as Record<string, unknown>

  const workspaceGuess = where.workspace ?? env.WARDEN_WORKSPACE
  let file: string | null = where.config ?? env.WARDEN_CONFIG ?? null
  if (file === null) {
    const candidate = path.join(expandHome(workspaceGuess ?? defaultWorkspace()), "warden.json")
    if (fs.existsSync(candidate)) file = candidate
  }
  let merged: Record<string, unknown> = builtinRaw
  if (file !== null) {
    file = path.resolve(expandHome(file))
    const user = readJson(file)
    if (Either.isLeft(user)) return Either.left(user.left)
    if (!isPlainObject(user.right)) {
      return Either.left(new ConfigError({ file, reason: "invalid", issues: [{ path: "", message: "the config must be a JSON object" }] }))
    }
    const userRaw = user.right
    const builtinProfiles = (builtinRaw.profiles ?? {}) as Record<string, unknown>
    const userProfiles = isPlainObject(userRaw.profiles) ? userRaw.profiles : {}
    // A profile named like a built-in one changes only the fields it gives; the merged whole is validated below.
    const profiles: Record<string, unknown> = { ...builtinProfiles }
    for (const [name, profile] of Object.entries(userProfiles)) {
      profiles[name] = name in builtinProfiles ? mergeFields(builtinProfiles[name], profile) : profile
    }
    merged = { ...builtinRaw, ...userRaw, ...(userRaw.profiles === undefined || isPlainObject(userRaw.profiles) ? { profiles } : {}) }
  }
  const decoded = validate(file ?? builtinFile, merged)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const config = decoded.right
  const workspaceDir = path.resolve(expandHome(where.workspace ?? env.WARDEN_WORKSPACE ?? config.workspace ?? defaultWorkspace()))
  return Either.right({
    ...config,
    file,
    workspaceDir,
    allowRootResolved: config.allowRoot || env.WARDEN_ALLOW_ROOT === "1",
    wardenHome: wardenHome()
  })
}

export const loadConfig = (where: ConfigLocation = {}): Effect.Effect<ResolvedConfig, ConfigError> =>
  Effect.suspend(() => loadConfigSync(where))
