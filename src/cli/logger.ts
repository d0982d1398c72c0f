import * as path from "node:path"
import pino from "pino"
import type { WorkspacePaths } from "../workspace/paths.js"

/** Warden's log: JSON lines in `state/warden.log` of the workspace. */
export const openLogger = (paths: WorkspacePaths, bindings: Record<string, unknown> = {}) =>
  pino(
    { level: process.env.WARDEN_LOG_LEVEL ?? "info", base: { pid: process.pid, ...bindings } },
    pino.destination({ dest: path.join(paths.root, "state", "warden.log"), mkdir: true, sync: true })
  )
