import * as fs from "node:fs"
import * as os from "node:os"

/** Memory the machine can still give (MemAvailable), in MB; free memory where there is no /proc. */
export const availableMemoryMb = (): number => {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))
    if (match) return Math.floor(Number(match[1]) / 1024)
  } catch {
    // not Linux: fall back to free memory
  }
  return Math.floor(os.freemem() / 1024 / 1024)
}
