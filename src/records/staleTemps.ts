import * as fs from "node:fs"
import * as path from "node:path"

/** The temporary names `writeFileAtomic` writes before its rename: `.<file>.<pid>.<random>.tmp`. */
const TEMP_NAME = /^\..+\.(\d+)\.[a-z0-9]*\.tmp$/

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Removes what a process killed between its write and its rename left in `dirs`
 * (a `kill -9` of the daemon while it saved a snapshot leaves one for good). A
 * temporary file of a live process is being written, and stays. Returns the
 * removed paths.
 */
export const removeStaleTemps = (dirs: ReadonlyArray<string>): Array<string> =>
  dirs.flatMap((dir) => {
    let names: Array<string>
    try {
      names = fs.readdirSync(dir)
    } catch {
      // a folder that is not there (or cannot be listed) holds no temp file this sweep could remove
      return []
    }
    return names.flatMap((name) => {
      const match = TEMP_NAME.exec(name)
      if (match === null || processAlive(Number(match[1]))) return []
      const file = path.join(dir, name)
      try {
        fs.rmSync(file)
        return [file]
      } catch {
        // removed meanwhile, or not ours to remove: the sweep is best effort and runs again
        return []
      }
    })
  })
