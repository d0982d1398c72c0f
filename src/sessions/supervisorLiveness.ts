import { procStat } from "../system/processScan.js"

/** The kernel's start time of a process (clock ticks since boot), which tells a reused pid apart. */
export const processStartTicks = (pid: number): string | null => {
  const stat = procStat(pid)
  // The records keep it as text (the seed's tools read it so); no such process: unknown.
  return stat === null ? null : String(stat.startTicks)
}

/** Whether the supervisor that wrote a record is still that same process. */
export const supervisorAlive = (supervisor: { readonly pid: number; readonly proc_start: string | null }): boolean => {
  if (!Number.isInteger(supervisor.pid) || supervisor.pid <= 0) return false
  const ticks = processStartTicks(supervisor.pid)
  if (ticks === null) return false
  return supervisor.proc_start === null || supervisor.proc_start === ticks
}
