import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"

/**
 * Process control of agents: everything an attempt started, wherever it went.
 *
 * Each attempt's pane is a session and process group of its own (tmux starts the pane's program with
 * `setsid`, and the launcher runs the agent in that group, not as a job of its own, so the agent keeps
 * the pane as its controlling terminal). What leaves the group (`setsid`, a double fork) is still found:
 * where cgroup v2 is writable the launcher moves itself into the attempt's own cgroup before it starts
 * the agent, and `cgroup.kill` ends all of it; otherwise, and in addition, a scan of `/proc/<pid>/environ`
 * for the attempt's `WARDEN_ATTEMPT=<id>` finds what carries the attempt's environment.
 */
export class AgentProcesses extends Context.Tag("warden/AgentProcesses")<
  AgentProcesses,
  {
    /** Creates the attempt's cgroup; null where cgroup v2 is off or not writable (the scan alone then finds its processes). */
    readonly prepare: (attemptId: string) => Effect.Effect<string | null>
    /** Pids of the attempt's processes still running: its cgroup's members and whatever carries its `WARDEN_ATTEMPT`. */
    readonly find: (attemptId: string) => Effect.Effect<ReadonlyArray<number>>
    /**
     * Ends every process of the attempt: SIGTERM, then after the grace SIGKILL (`cgroup.kill`), then
     * removes its cgroup. Returns the pids it signalled. Safe to call again, and for an unknown attempt.
     */
    readonly reap: (attemptId: string) => Effect.Effect<ReadonlyArray<number>>
  }
>() {}

export interface AgentProcessesOptions {
  /** Between SIGTERM and SIGKILL. */
  readonly killGraceMs: number
  /** Use a cgroup per attempt where cgroup v2 is writable. */
  readonly cgroups: boolean
}

const POLL_MS = 50
const SWEEP_AGE_MS = 60_000
/** An attempt id as Warden makes them: it names a cgroup directory and goes into a /proc scan. */
const ATTEMPT_ID = /^[A-Za-z0-9_-]+$/

/** The cgroup v2 mount point, from `/proc/self/mountinfo` (fields after ` - ` are type, source, options). */
export const cgroup2Mount = (mountinfo: string): string | null => {
  for (const line of mountinfo.split("\n")) {
    const [before, after] = line.split(" - ")
    if (after === undefined || after.split(" ")[0] !== "cgroup2") continue
    const mountPoint = before!.split(" ")[4]
    if (mountPoint !== undefined) return mountPoint.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
  }
  return null
}

/** This process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`). */
export const ownCgroup2Path = (procCgroup: string): string | null => {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"))
  return line === undefined ? null : line.slice(3)
}

const readOr = (file: string, fallback: string): string => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    // missing or unreadable: the caller's fallback is the answer
    return fallback
  }
}

/**
 * Where the attempts' cgroups go: `warden-agents` under this process's own cgroup (under systemd, the
 * unit's delegated cgroup), if it can be created and written. Null otherwise.
 */
const findCgroupBase = (): string | null => {
  const mount = cgroup2Mount(readOr("/proc/self/mountinfo", ""))
  const own = ownCgroup2Path(readOr("/proc/self/cgroup", ""))
  if (mount === null || own === null) return null
  const base = path.join(mount, own, "warden-agents")
  try {
    fs.mkdirSync(base, { recursive: true })
    fs.accessSync(path.join(base, "cgroup.procs"), fs.constants.W_OK)
    // cgroup.kill came with Linux 5.14; without it the cgroup only helps find the processes.
    return base
  } catch {
    // no writable cgroup here: agents are then found by process group and environment
    return null
  }
}

/** Pids of every process whose environment holds `NAME=value` (ours excepted). */
export const processesWithEnv = (name: string, value: string): Array<number> => {
  const needle = Buffer.from(`${name}=${value}\0`)
  const out: Array<number> = []
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    // no /proc (not Linux): nothing to find this way
    return out
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid === process.pid) continue
    let environ: Buffer
    try {
      environ = fs.readFileSync(`/proc/${entry}/environ`)
    } catch {
      continue // gone, or not ours to read
    }
    const at = environ.indexOf(needle)
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) out.push(pid)
  }
  return out
}

const cgroupMembers = (dir: string): Array<number> =>
  readOr(path.join(dir, "cgroup.procs"), "")
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number)

/** Not a zombie: a process that is still running (a zombie waits only for its parent to collect it). */
const running = (pid: number): boolean => {
  const stat = readOr(`/proc/${pid}/stat`, "")
  if (stat === "") return false
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
}

const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {
    // gone already, or not ours
  }
}

/** The live process control, with the kill grace and the cgroup choice from the config. */
export const makeAgentProcesses = (options: AgentProcessesOptions): AgentProcesses["Type"] => {
  let base: string | null | undefined
  const cgroupBase = (): string | null => {
    if (!options.cgroups) return null
    if (base === undefined) base = findCgroupBase()
    return base
  }
  const cgroupOf = (attemptId: string): string | null => {
    const b = cgroupBase()
    return b === null || !ATTEMPT_ID.test(attemptId) ? null : path.join(b, attemptId)
  }

  const findNow = (attemptId: string): Array<number> => {
    if (!ATTEMPT_ID.test(attemptId)) return []
    const dir = cgroupOf(attemptId)
    const pids = new Set([...(dir === null ? [] : cgroupMembers(dir)), ...processesWithEnv("WARDEN_ATTEMPT", attemptId)])
    pids.delete(process.pid)
    return [...pids].filter(running).sort((a, b) => a - b)
  }

  /**
   * Removes the cgroups of attempts that ended with no daemon to remove them (the tmux server killed
   * while the daemon was stopped: the launcher's `cgroup.kill` ended them, but it cannot remove the
   * cgroup it is in). Only empty ones a minute old: a new one waits for its launcher to move in.
   */
  const sweep = (b: string) => {
    let entries: Array<string>
    try {
      entries = fs.readdirSync(b)
    } catch {
      // no such cgroup folder (yet): nothing to sweep
      return
    }
    for (const entry of entries) {
      if (!ATTEMPT_ID.test(entry)) continue
      const dir = path.join(b, entry)
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs < SWEEP_AGE_MS) continue
        if (!/^populated 0$/m.test(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8"))) continue
        fs.rmdirSync(dir)
      } catch {
        // gone meanwhile, not a cgroup, or busy
      }
    }
  }

  const prepare = (attemptId: string) =>
    Effect.sync(() => {
      const dir = cgroupOf(attemptId)
      if (dir === null) return null
      sweep(path.dirname(dir))
      try {
        fs.mkdirSync(dir, { recursive: true })
        return dir
      } catch {
        // no cgroup for this agent: it is then found by process group and environment
        return null
      }
    })

  const reap = (attemptId: string) =>
    Effect.gen(function* () {
      const dir = cgroupOf(attemptId)
      const signalled = new Set<number>()
      const terminate = (pids: ReadonlyArray<number>) => {
        for (const pid of pids) {
          if (signalled.has(pid)) continue
          signalled.add(pid)
          signal(pid, "SIGTERM")
        }
      }
      terminate(findNow(attemptId))
      // Until the grace is over, or two scans a poll apart find nothing: a process forked while the
      // first scan ran (a parent exits as its child starts) shows in the next one and gets its SIGTERM.
      const deadline = Date.now() + options.killGraceMs
      let quietScans = 0
      while (quietScans < 2 && Date.now() < deadline) {
        yield* Effect.sleep(POLL_MS)
        const left = findNow(attemptId)
        quietScans = left.length === 0 ? quietScans + 1 : 0
        terminate(left)
      }
      // cgroup.kill ends everything in the cgroup, forks in flight included (harmless when it is empty).
      if (dir !== null) {
        try {
          fs.writeFileSync(path.join(dir, "cgroup.kill"), "1")
        } catch {
          // no cgroup.kill (Linux before 5.14), or no cgroup: the pids below
        }
      }
      const killDeadline = Date.now() + 2_000
      let left = findNow(attemptId)
      while (left.length > 0 && Date.now() < killDeadline) {
        for (const pid of left) {
          signalled.add(pid)
          signal(pid, "SIGKILL")
        }
        yield* Effect.sleep(POLL_MS)
        left = findNow(attemptId)
      }
      if (dir !== null) {
        // Empty now (a zombie still counts until its parent collects it: then it stays for the next reap).
        try {
          fs.rmdirSync(dir)
        } catch {
          // not there, or not empty yet
        }
      }
      return [...signalled]
    })

  return { prepare, find: (attemptId) => Effect.sync(() => findNow(attemptId)), reap }
}

export const agentProcessesLayer = (options: AgentProcessesOptions): Layer.Layer<AgentProcesses> =>
  Layer.sync(AgentProcesses, () => makeAgentProcesses(options))

/** The test layer: attempts are fake process sets; what was prepared and reaped is recorded. */
export const makeAgentProcessesTest = () => {
  const running = new Map<string, Set<number>>()
  const prepared: Array<string> = []
  const reaped: Array<string> = []
  let nextPid = 900_000
  const service = AgentProcesses.of({
    prepare: (attemptId) =>
      Effect.sync(() => {
        prepared.push(attemptId)
        return null
      }),
    find: (attemptId) => Effect.sync(() => [...(running.get(attemptId) ?? [])]),
    reap: (attemptId) =>
      Effect.sync(() => {
        reaped.push(attemptId)
        const pids = [...(running.get(attemptId) ?? [])]
        running.delete(attemptId)
        return pids
      })
  })
  return {
    service,
    layer: Layer.succeed(AgentProcesses, service),
    prepared,
    reaped,
    /** A fake process of the attempt, running until the attempt is reaped. */
    start: (attemptId: string): number => {
      const pid = nextPid++
      const set = running.get(attemptId) ?? new Set<number>()
      set.add(pid)
      running.set(attemptId, set)
      return pid
    }
  }
}
