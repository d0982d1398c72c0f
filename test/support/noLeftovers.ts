import { randomBytes } from "node:crypto"
import { processesWithEnv } from "./processes.js"

/**
 * The suite leaves no process behind. Setup marks the run: every process a test starts (the CLI, the
 * daemon, tmux, agents) inherits `WARDEN_TEST_RUN`. Teardown scans `/proc/<pid>/environ` for the mark,
 * kills what it finds (so the machine stays clean) and fails the run naming each process.
 */
const MARK = "WARDEN_TEST_RUN"

/** Pids (other than vitest's own) whose environment carries `MARK=value`. */
const marked = (value: string): Array<{ pid: number; cmdline: string }> =>
  // vitest's own workers carry the mark too; they end with the run (a forked worker retitles itself `node (vitest N)`).
  processesWithEnv(MARK, value).filter(
    (p) => p.pid !== process.pid && !/node_modules\/(vitest|tinypool)\//.test(p.cmdline) && !/^node \(vitest \d+\)$/.test(p.cmdline)
  )

export default function setup() {
  const value = randomBytes(8).toString("hex")
  process.env[MARK] = value
  return async () => {
    // A daemon told to stop in a test's last line may still be on its way out.
    const deadline = Date.now() + 5_000
    let left = marked(value)
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      left = marked(value)
    }
    if (left.length === 0) return
    for (const p of left) {
      try {
        process.kill(p.pid, "SIGKILL")
      } catch {
        // gone
      }
    }
    throw new Error(
      `the test run left ${left.length} process(es) running (killed now):\n${left.map((p) => `  pid ${p.pid}: ${p.cmdline}`).join("\n")}`
    )
  }
}
