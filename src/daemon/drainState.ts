import * as fs from "node:fs"
import { writeFileAtomic } from "../records/RecordStore.js"
import { isMissing } from "../workspace/missingFile.js"

/**
 * Drain mode outlives a restart: while it is on, a small file says so (with
 * when it was turned on); turning it off removes the file. A file that cannot
 * be read counts as draining: admitting work an operator meant to hold back is
 * the worse mistake.
 */
export const readDrainState = (file: string): boolean => {
  try {
    fs.lstatSync(file)
  } catch (error) {
    // Only a file that is not there means "not draining"; one that cannot even be looked at counts as draining.
    return !isMissing(error)
  }
  try {
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { draining?: unknown }).draining !== false
  } catch {
    // unreadable or torn: draining, as said above
    return true
  }
}

export const writeDrainState = (file: string, on: boolean): void => {
  if (on) writeFileAtomic(file, `${JSON.stringify({ draining: true, since: new Date().toISOString() })}\n`)
  else fs.rmSync(file, { force: true })
}
