import type { SessionPolicy } from "../../machines/agentSession.types.js"
import type { ResolvedConfig } from "./loadConfig.js"
import type { ProfileConfig } from "./schema.js"

/** A profile with every default filled in, ready for one dispatch. */
export interface ResolvedProfile {
  readonly name: string
  readonly agent: string
  readonly model: string
  readonly config: ProfileConfig
  readonly policy: SessionPolicy
}

export interface ProfileOverrides {
  readonly timeoutMs?: number | undefined
  readonly stallMs?: number | undefined
  readonly maxAttempts?: number | undefined
}

export const resolveProfile = (
  config: ResolvedConfig,
  name: string,
  overrides: ProfileOverrides = {}
): ResolvedProfile | { readonly error: string } => {
  const profile = config.profiles[name]
  if (profile === undefined) {
    return { error: `unknown agent profile "${name}"; configured: ${Object.keys(config.profiles).sort().join(", ")}` }
  }
  const retry = { ...config.defaults.retry, ...(profile.retry ?? {}) }
  return {
    name,
    agent: profile.agent ?? name,
    model: profile.model ?? name,
    config: profile,
    policy: {
      timeoutMs: overrides.timeoutMs ?? profile.timeoutMs ?? config.defaults.timeoutMs,
      stallMs: overrides.stallMs ?? profile.stallMs ?? config.defaults.stallMs,
      sources: profile.completion.sources,
      retry: {
        maxAttempts: overrides.maxAttempts ?? retry.maxAttempts,
        backoffInitialMs: retry.backoffInitialMs,
        backoffFactor: retry.backoffFactor,
        backoffMaxMs: retry.backoffMaxMs,
        retryOn: retry.retryOn
      }
    }
  }
}
