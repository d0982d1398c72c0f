import * as fs from "node:fs"
import * as os from "node:os"

/** One process as /proc shows it, with what Argus needs to judge it. */
export interface ScannedProcess {
  readonly pid: number
  /** Field 22 of /proc/PID/stat: with the pid, names the process (a recycled pid has another). */
  readonly startTicks: number
  /** The executable (/proc/PID/exe), never the command line; null when it cannot be read (another user's, a kernel thread). */
  readonly exe: string | null
  readonly uid: number
  readonly ageSeconds: number
  /** `WARDEN_ATTEMPT` from its environment, or null. */
  readonly attemptId: string | null
  /** `WARDEN_WORKSPACE` from its environment (the workspace whose agent it is), or null. */
  readonly workspace: string | null
  /** Its cgroup v2 path (from /proc/PID/cgroup), or null. */
  readonly cgroup: string | null
}

const CLOCK_TICKS = 100

/** The fields of `/proc/<pid>/stat` Warden needs. */
export interface ProcStat {
  /** `R`, `S`, ... `Z` for a zombie, `X` for a dead entry. */
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  /** Field 22: clock ticks since boot when it started; with the pid, it names the process (a recycled pid has another). */
  readonly startTicks: number
}

/** `/proc/<pid>/stat`, read once and parsed; null when there is no such process (any more). */
export const procStat = (pid: number): ProcStat | null => {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    // no such process (any more), or no /proc
    return null
  }
  // The command name (field 2) may hold spaces and parentheses: count the fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return { state: fields[0] ?? "", ppid: Number(fields[1]), pgrp: Number(fields[2]), startTicks: Number(fields[19]) }
}

const bootTime = (): number => {
  const match = /^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))
  return match === null ? Math.floor(Date.now() / 1000 - os.uptime()) : Number(match[1])
}

/** One process, or null when it is gone (or unreadable) by the time it is read. */
export const scanProcess = (pid: number, now = Date.now(), boot = bootTime()): ScannedProcess | null => {
  const stat = procStat(pid)
  if (stat === null || stat.state === "Z" || stat.state === "X") return null
  let status: string
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  } catch {
    // gone since the listing: nothing to judge
    return null
  }
  const startTicks = stat.startTicks
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1)
  let exe: string | null = null
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "")
  } catch {
    // a kernel thread, or not ours to read: no executable to match
    exe = null
  }
  let attemptId: string | null = null
  let workspace: string | null = null
  try {
    const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
    const value = (name: string) => {
      const entry = environ.find((e) => e.startsWith(`${name}=`))
      return entry === undefined ? null : entry.slice(name.length + 1)
    }
    attemptId = value("WARDEN_ATTEMPT")
    workspace = value("WARDEN_WORKSPACE")
  } catch {
    // not ours to read: it carries no attempt we can see
    attemptId = null
  }
  let cgroup: string | null = null
  try {
    cgroup = /^0::(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1] ?? null
  } catch {
    // gone, or no cgroup v2
    cgroup = null
  }
  const ageSeconds = Math.max(0, Math.round(now / 1000 - (boot + startTicks / CLOCK_TICKS)))
  return { pid, startTicks, exe, uid, ageSeconds, attemptId, workspace, cgroup }
}

/** Every process whose executable is one of `executables` (absolute paths). */
export const processesRunning = (executables: ReadonlyArray<string>): ReadonlyArray<ScannedProcess> => {
  const wanted = new Set(executables)
  const now = Date.now()
  const boot = bootTime()
  const out: ScannedProcess[] = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let exe: string
    try {
      exe = fs.readlinkSync(`/proc/${entry}/exe`).replace(/ \(deleted\)$/, "")
    } catch {
      // unreadable or gone: not one of ours to judge
      continue
    }
    if (!wanted.has(exe)) continue
    const scanned = scanProcess(Number(entry), now, boot)
    if (scanned !== null) out.push(scanned)
  }
  return out
}

/** The machine's load: memory and disk used (percent), the 1-minute load and the cores. */
export const machineLoad = (diskPath: string) => {
  let memoryUsedPercent = 100 - (os.freemem() / os.totalmem()) * 100
  try {
    const info = fs.readFileSync("/proc/meminfo", "utf8")
    const total = Number(/^MemTotal:\s+(\d+) kB$/m.exec(info)?.[1])
    const available = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(info)?.[1])
    if (total > 0 && Number.isFinite(available)) memoryUsedPercent = 100 - (available / total) * 100
  } catch {
    // not Linux: free memory stands
  }
  let diskUsedPercent = 0
  try {
    const disk = fs.statfsSync(diskPath)
    diskUsedPercent = disk.blocks === 0 ? 0 : 100 - (disk.bavail / disk.blocks) * 100
  } catch {
    // the path is gone: the disk is not judged this cycle
    diskUsedPercent = 0
  }
  return {
    memoryUsedPercent: Math.round(memoryUsedPercent * 10) / 10,
    diskUsedPercent: Math.round(diskUsedPercent * 10) / 10,
    load1: os.loadavg()[0]!,
    cores: os.cpus().length
  }
}
