import * as fs from "node:fs"
import type { WorkspacePaths } from "../workspace/paths.js"

/** One line of a bead's signals file: what `warden signal`, a hook or the API reported. */
export interface SignalLine {
  readonly bead: string
  readonly attempt_id: string | null
  readonly status: string
  readonly summary: string | null
  readonly source: string
  readonly payload?: unknown
  readonly at: number
  readonly pid: number
}

/**
 * Appends a signal to the bead's signals file, where the session's watcher
 * reads it (and a restarted daemon re-reads it). One short line with
 * O_APPEND: concurrent writers never interleave. Plain Node, no Effect: the
 * agents' `warden signal` loads this.
 */
export const appendSignalLine = (paths: WorkspacePaths, line: SignalLine): void => {
  fs.mkdirSync(paths.watch, { recursive: true })
  fs.appendFileSync(paths.signalsFile(line.bead), `${JSON.stringify(line)}\n`)
}
