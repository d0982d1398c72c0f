import type { ResolvedConfig } from "../config/loadConfig.js"
import type { RecordedSpec } from "../records/buildRecords.js"

/**
 * Everything fixed at dispatch time for one bead: compiled once, then read by every attempt.
 * Its bead, profile, prompt, template name, paths and supervisor are declared
 * with the records (`RecordedSpec`), which show them.
 */
export interface DispatchSpec extends RecordedSpec {
  /** The repo as given (preflight resolves and checks it). */
  readonly repo: string
  /** For the `custom` profile: the command line run through `sh -c`. */
  readonly command: string | null
  /** The environment of whoever dispatched: the agent gets it, plus its profile's and Warden's variables. */
  readonly env: Readonly<Record<string, string>>
  readonly config: ResolvedConfig
}

export const BEAD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
