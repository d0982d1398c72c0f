import type { ResolvedConfig } from "../config/loadConfig.js"
import type { ResolvedProfile } from "../config/profiles.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/** Everything fixed at dispatch time for one bead: compiled once, then read by every attempt. */
export interface DispatchSpec {
  readonly bead: string
  /** The repo as given (preflight resolves and checks it). */
  readonly repo: string
  readonly profile: ResolvedProfile
  /** The rendered prompt, or why it could not be rendered (preflight reports it). */
  readonly prompt: { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string }
  readonly templateName: string | null
  /** For the `custom` profile: the command line run through `sh -c`. */
  readonly command: string | null
  /** The environment of whoever dispatched: the agent gets it, plus its profile's and Warden's variables. */
  readonly env: Readonly<Record<string, string>>
  readonly config: ResolvedConfig
  readonly paths: WorkspacePaths
  readonly supervisor: { readonly pid: number; readonly procStart: string | null; readonly host: string; readonly kind: "foreground" | "daemon"; readonly startedAt: number }
}

export const BEAD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
