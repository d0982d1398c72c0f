import * as fs from "node:fs"
import type { WorkspacePaths } from "../workspace/paths.js"
import { beadOfActor, type MachineEvent } from "./machineEvents.js"

/**
 * Appends each bead's machine events to `state/history/<bead>.jsonl` (kept as long as its records, for
 * replay), for the daemon and for a foreground session alike. The history serves replay only: a write that
 * fails (a full disk) is logged, never thrown, so it cannot stop supervision.
 */
export class MachineHistory {
  private ready = false

  constructor(
    private readonly paths: WorkspacePaths,
    private readonly log: (message: string, detail?: Record<string, unknown>) => void
  ) {}

  append(event: MachineEvent): void {
    const bead = beadOfActor(event.actor)
    if (bead === null) return
    try {
      if (!this.ready) {
        fs.mkdirSync(this.paths.history, { recursive: true })
        this.ready = true
      }
      fs.appendFileSync(this.paths.historyFile(bead), `${JSON.stringify(event)}\n`)
    } catch (error) {
      this.log("machine history not written", { bead, reason: (error as Error).message })
    }
  }
}
