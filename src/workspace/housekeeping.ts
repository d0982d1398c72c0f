import type { ResolvedConfig } from "../config/loadConfig.js"
import type { WorkspacePaths } from "./paths.js"
import { SWEEP_INTERVAL_MS, sweepRetention } from "./retention.js"
import { stateAccess } from "./stateAccess.js"
import { tightenState } from "./statePermissions.js"

/**
 * The daemon's upkeep of its workspace: at start, every file and directory of
 * the state is brought to its private mode (an older Warden left them 0644)
 * and the retention sweep runs; then the sweep runs every hour. A failed sweep
 * is logged and tried again at the next hour, never fatal.
 */
export const startHousekeeping = (
  config: ResolvedConfig,
  paths: WorkspacePaths,
  log: (message: string, detail?: Record<string, unknown>) => void,
  now: () => number = Date.now
): { readonly stop: () => void } => {
  const sweep = () => {
    try {
      const report = sweepRetention(paths, config.retention, now())
      if (report.removed.length > 0 || report.keptLive.length > 0) {
        log("retention sweep", { removed: report.removed.length, keptLive: report.keptLive.length, files: report.removed.slice(0, 50) })
      }
    } catch (error) {
      log("retention sweep failed", { error: (error as Error).message })
    }
  }
  try {
    tightenState(paths, stateAccess(config.operatorsGroup), true)
  } catch (error) {
    log("could not tighten the state's modes", { error: (error as Error).message })
  }
  sweep()
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
