import * as fs from "node:fs"
import { supervisorAlive } from "../sessions/supervisorLiveness.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/** Where a running daemon can be found: written at start, removed at a clean stop. */
export interface DaemonInfo {
  readonly pid: number
  readonly proc_start: string | null
  readonly port: number
  readonly host: string
  readonly started_at: string
}

/** The daemon of this workspace when one runs (its info file names a live process). */
export const runningDaemon = (paths: WorkspacePaths): DaemonInfo | null => {
  try {
    const info = JSON.parse(fs.readFileSync(paths.daemon.info, "utf8")) as DaemonInfo
    return supervisorAlive({ pid: info.pid, proc_start: info.proc_start }) ? info : null
  } catch {
    // no info file, or a torn one: no daemon has announced itself
    return null
  }
}
