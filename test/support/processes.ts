import * as fs from "node:fs"

/**
 * Live processes (zombies left out) whose environment holds `name=value`, read from `/proc`,
 * independently of the product: what a test starts carries such a mark (`WARDEN_ATTEMPT`,
 * `WARDEN_WORKSPACE`, `WARDEN_TEST_RUN`), and what carries it must be gone when the test ends.
 */
export const processesWithEnv = (name: string, value: string): Array<{ pid: number; cmdline: string }> => {
  const needle = Buffer.from(`${name}=${value}\0`)
  const out: Array<{ pid: number; cmdline: string }> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`)
      const at = environ.indexOf(needle)
      if (at !== 0 && !(at > 0 && environ[at - 1] === 0)) continue
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue
      out.push({ pid: Number(entry), cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0+$/, "").replace(/\0/g, " ") })
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return out
}
