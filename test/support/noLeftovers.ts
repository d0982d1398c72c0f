import { randomBytes } from "node:crypto"
import * as fs from "node:fs"

/**
 * The suite leaves no process behind. Setup marks the run: every process a test starts (the CLI, the
 * daemon, tmux, agents) inherits `WARDEN_TEST_RUN`. Teardown scans `/proc/<pid>/environ` for the mark,
 * kills what it finds (so the machine stays clean) and fails the run naming each process.
 */
const MARK = "WARDEN_TEST_RUN"

/** Pids (other than vitest's own) whose environment carries `MARK=value`. */
const marked = (value: string): Array<{ pid: number; cmdline: string }> => {
  const needle = Buffer.from(`${MARK}=${value}\0`)
  const out: Array<{ pid: number; cmdline: string }> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`)
      const at = environ.indexOf(needle)
      if (at !== 0 && !(at > 0 && environ[at - 1] === 0)) continue
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0+$/, "").replace(/\0/g, " ")
      // vitest's own workers carry the mark too; they end with the run.
      if (/node_modules\/(vitest|tinypool)\//.test(cmdline)) continue
      out.push({ pid: Number(entry), cmdline })
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return out
}

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
