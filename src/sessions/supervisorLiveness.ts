import * as fs from "node:fs"

/** The kernel's start time of a process (clock ticks since boot), which tells a reused pid apart. */
export const processStartTicks = (pid: number): string | null => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19] ?? null
  } catch {
    // no such process (or no /proc): its start time is unknown
    return null
  }
}

/** Whether the supervisor that wrote a record is still that same process. */
export const supervisorAlive = (supervisor: { readonly pid: number; readonly proc_start: string | null }): boolean => {
  if (!Number.isInteger(supervisor.pid) || supervisor.pid <= 0) return false
  const ticks = processStartTicks(supervisor.pid)
  if (ticks === null) return false
  return supervisor.proc_start === null || supervisor.proc_start === ticks
}
