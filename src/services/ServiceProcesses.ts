import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { ServiceError } from "./serviceErrors.js"
import { procStat, type ProcStat } from "../system/processScan.js"

/** What to run for a service in process mode, and where its output goes. */
export interface ServiceSpec {
  readonly name: string
  /** The program, run directly (argv, never through a shell). */
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  /** Added to the daemon's own environment (a service needs `PATH`, `HOME`, ...). */
  readonly env: Readonly<Record<string, string>>
  /** stdout and stderr are appended here; the folder is created when missing. */
  readonly logFile: string
  /** Past this size the log is moved to `<logFile>.1` (one generation, its last `logMaxBytes`) and started afresh. */
  readonly logMaxBytes: number
}

/** A started service process: its pid and its kernel start time, which tells a reused pid apart. */
export interface StartedProcess {
  readonly pid: number
  /** Field 22 of `/proc/<pid>/stat` (clock ticks since boot); null when it could not be read. */
  readonly startTicks: number | null
}

/** How a process ended: its exit code, or the signal that ended it; both null for an adopted process (not our child). */
export interface ProcessExit {
  readonly code: number | null
  readonly signal: string | null
}

/** The long-lived programs of services in process mode: started, watched and stopped as whole process groups. */
export class ServiceProcesses extends Context.Tag("warden/ServiceProcesses")<
  ServiceProcesses,
  {
    /** Starts the program in its own process group (session), its output appended to its bounded log. */
    readonly start: (spec: ServiceSpec) => Effect.Effect<StartedProcess, ServiceError>
    /** Resolves once the process has exited: its exit event for one started here, polling `/proc` for an adopted pid. */
    readonly wait: (pid: number) => Effect.Effect<ProcessExit>
    /** SIGTERM to the process group, SIGKILL to it after `graceMs`; resolves once no process of the group is left. */
    readonly stop: (pid: number, graceMs: number) => Effect.Effect<void>
    /** Whether that same process still runs: the pid exists, is no zombie, and has that start time (null: the pid alone). */
    readonly alive: (pid: number, startTicks: number | null) => boolean
  }
>() {}

/** How often `/proc` is looked at while waiting for an adopted process or for a group to empty. */
const POLL_MS = 50


/** A zombie (or a dead entry) has ended; it waits only for its parent to collect it. */
const ended = (stat: ProcStat | null): boolean => stat === null || stat.state === "Z" || stat.state === "X"

/** The live (not zombie) processes whose process group is `pgid`. */
export const groupMembers = (pgid: number): Array<number> => {
  const out: Array<number> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const stat = procStat(Number(entry))
    if (stat !== null && stat.pgrp === pgid && !ended(stat)) out.push(Number(entry))
  }
  return out
}

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: the group is empty already
  }
}

/**
 * Keeps a log under its limit: once it has passed `maxBytes`, its last `maxBytes` become `<logFile>.1` and the
 * log is truncated. The program writes to the file itself (O_APPEND, so it writes at the new end after a
 * truncation): its output never depends on the daemon, which a detached service outlives.
 */
const rotateIfOver = (fd: number, logFile: string, maxBytes: number): void => {
  try {
    const size = fs.fstatSync(fd).size
    if (size <= maxBytes) return
    const keep = Buffer.alloc(maxBytes)
    const read = fs.readSync(fd, keep, 0, maxBytes, size - maxBytes)
    fs.writeFileSync(`${logFile}.1`, keep.subarray(0, read))
    fs.ftruncateSync(fd, 0)
  } catch {
    // A full disk or a removed folder: the next write tries again; the program must not suffer for its log.
  }
}

/** Watches the log for writes (inotify), rotating it as it passes its limit; returns the way to stop watching. */
const boundLog = (fd: number, logFile: string, maxBytes: number): (() => void) => {
  const check = () => rotateIfOver(fd, logFile, maxBytes)
  try {
    const watcher = fs.watch(logFile, { persistent: false }, check)
    watcher.on("error", () => watcher.close())
    return () => watcher.close()
  } catch {
    // No inotify watch to be had (the user's limit reached): look twice a second instead.
    const timer = setInterval(check, 500)
    return () => clearInterval(timer)
  }
}

interface Child {
  exit: ProcessExit | null
  readonly waiters: Set<(exit: ProcessExit) => void>
}

const invalidSpec = (spec: ServiceSpec): string | null => {
  if (spec.command.trim() === "") return `service ${spec.name}: its command is empty`
  if (!Number.isInteger(spec.logMaxBytes) || spec.logMaxBytes <= 0) return `service ${spec.name}: logMaxBytes must be a positive integer, not ${spec.logMaxBytes}`
  let isDir = false
  try {
    isDir = fs.statSync(spec.cwd).isDirectory()
  } catch {
    // missing: said below
  }
  return isDir ? null : `service ${spec.name}: its working directory ${spec.cwd} does not exist or is not a folder`
}

/** The live layer's implementation; the children it started are remembered for `wait` (their exit codes). */
export const makeServiceProcessesLive = (): ServiceProcesses["Type"] => {
  const children = new Map<number, Child>()

  const start = (spec: ServiceSpec) =>
    Effect.async<StartedProcess, ServiceError>((resume) => {
      const invalid = invalidSpec(spec)
      if (invalid !== null) return resume(Effect.fail(new ServiceError({ reason: "spawn-failed", detail: invalid })))
      let fd: number
      try {
        fs.mkdirSync(path.dirname(spec.logFile), { recursive: true })
        fd = fs.openSync(spec.logFile, "a+", 0o640)
      } catch (error) {
        return resume(
          Effect.fail(new ServiceError({ reason: "io", detail: `service ${spec.name}: cannot open its log ${spec.logFile}: ${(error as Error).message}` }))
        )
      }
      rotateIfOver(fd, spec.logFile, spec.logMaxBytes)
      // detached: setsid, so the program leads its own process group and a stop reaches everything it started
      // (except what escapes with setsid of its own). Never unref'd: the daemon waits for and collects it.
      const child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: { ...process.env, ...spec.env },
        detached: true,
        stdio: ["ignore", fd, fd]
      })
      let spawned = false
      let unbound: (() => void) | null = null
      child.once("error", (error) => {
        if (spawned) return
        fs.closeSync(fd)
        resume(Effect.fail(new ServiceError({ reason: "spawn-failed", detail: `service ${spec.name}: cannot start ${spec.command}: ${error.message}` })))
      })
      child.once("spawn", () => {
        spawned = true
        const pid = child.pid as number
        const record: Child = { exit: null, waiters: new Set() }
        children.set(pid, record)
        unbound = boundLog(fd, spec.logFile, spec.logMaxBytes)
        child.once("exit", (code, signal) => {
          unbound?.()
          rotateIfOver(fd, spec.logFile, spec.logMaxBytes)
          fs.closeSync(fd)
          record.exit = { code, signal }
          for (const waiter of record.waiters) waiter(record.exit)
          record.waiters.clear()
        })
        const stat = procStat(pid)
        resume(Effect.succeed({ pid, startTicks: stat === null ? null : stat.startTicks }))
      })
    })

  const waitAdopted = (pid: number): Effect.Effect<ProcessExit> =>
    Effect.suspend(() => {
      const first = procStat(pid)
      if (ended(first)) return Effect.succeed({ code: null, signal: null })
      const ticks = (first as ProcStat).startTicks
      const gone = Effect.sync(() => {
        const now = procStat(pid)
        return ended(now) || (now as ProcStat).startTicks !== ticks
      })
      return gone.pipe(
        Effect.tap((isGone) => (isGone ? Effect.void : Effect.sleep(Duration.millis(POLL_MS)))),
        Effect.repeat({ until: (isGone) => isGone }),
        Effect.as({ code: null, signal: null })
      )
    })

  const wait = (pid: number): Effect.Effect<ProcessExit> =>
    Effect.suspend(() => {
      const child = children.get(pid)
      if (child === undefined) return waitAdopted(pid)
      return Effect.async<ProcessExit>((resume) => {
        if (child.exit !== null) return resume(Effect.succeed(child.exit))
        const waiter = (exit: ProcessExit) => resume(Effect.succeed(exit))
        child.waiters.add(waiter)
        return Effect.sync(() => {
          child.waiters.delete(waiter)
        })
      })
    })

  const groupEmpty = (pgid: number) => Effect.sync(() => groupMembers(pgid).length === 0)

  const untilEmpty = (pgid: number, each: Effect.Effect<void>) =>
    groupEmpty(pgid).pipe(
      Effect.tap((empty) => (empty ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(POLL_MS)), each))),
      Effect.repeat({ until: (empty) => empty }),
      Effect.asVoid
    )

  const stop = (pid: number, graceMs: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      // kill(-1) would signal every process the daemon may signal, and its own group is not a service's.
      if (!Number.isInteger(pid) || pid <= 1 || pid === procStat(process.pid)?.pgrp) {
        return Effect.die(new Error(`ServiceProcesses.stop: refusing to signal the process group ${pid}`))
      }
      signalGroup(pid, "SIGTERM")
      return untilEmpty(pid, Effect.void).pipe(
        Effect.timeoutOption(Duration.millis(Math.max(0, graceMs))),
        Effect.flatMap((emptied) =>
          Option.isSome(emptied)
            ? Effect.void
            : // A member forked after the SIGKILL would be missed by one signal: repeat it until the group is empty.
              Effect.zipRight(
                Effect.sync(() => signalGroup(pid, "SIGKILL")),
                untilEmpty(pid, Effect.sync(() => signalGroup(pid, "SIGKILL")))
              )
        )
      )
    })

  const alive = (pid: number, startTicks: number | null): boolean => {
    if (!Number.isInteger(pid) || pid <= 0) return false
    const stat = procStat(pid)
    if (ended(stat)) return false
    return startTicks === null || (stat as ProcStat).startTicks === startTicks
  }

  return { start, wait, stop, alive }
}

/** The live layer: real child processes in their own process groups. */
export const ServiceProcessesLive = Layer.sync(ServiceProcesses, makeServiceProcessesLive)

/** One process of the test layer, as a test sees it. */
export interface FakeServiceProcess {
  readonly spec: ServiceSpec
  readonly pid: number
  readonly startTicks: number
  exit: ProcessExit | null
  /** The grace of each `stop` that reached it. */
  readonly stops: Array<number>
}

/**
 * The test layer, in memory: `start` hands out pids (or fails as `failStart` says), a process runs until the
 * test calls `exit(pid, code, signal)` or `stop` ends it (as SIGTERM would), and `wait` resolves then.
 */
export const makeServiceProcessesTest = () => {
  let nextPid = 50_000
  const processes = new Map<number, FakeServiceProcess>()
  const waiters = new Map<number, Set<(exit: ProcessExit) => void>>()
  let startFailure: ServiceError | null = null

  const finish = (pid: number, exit: ProcessExit) => {
    const proc = processes.get(pid)
    if (proc === undefined) throw new Error(`ServiceProcesses test layer: no process ${pid} was started`)
    if (proc.exit !== null) return
    proc.exit = exit
    for (const waiter of waiters.get(pid) ?? []) waiter(exit)
    waiters.delete(pid)
  }

  const service = ServiceProcesses.of({
    start: (spec) =>
      Effect.suspend(() => {
        if (startFailure !== null) return Effect.fail(startFailure)
        const pid = nextPid++
        processes.set(pid, { spec, pid, startTicks: pid * 10, exit: null, stops: [] })
        return Effect.succeed({ pid, startTicks: pid * 10 })
      }),
    wait: (pid) =>
      Effect.async<ProcessExit>((resume) => {
        const proc = processes.get(pid)
        if (proc === undefined) return resume(Effect.die(new Error(`ServiceProcesses.wait: no process ${pid} was started`)))
        if (proc.exit !== null) return resume(Effect.succeed(proc.exit))
        const waiter = (exit: ProcessExit) => resume(Effect.succeed(exit))
        const set = waiters.get(pid) ?? new Set()
        set.add(waiter)
        waiters.set(pid, set)
        return Effect.sync(() => {
          set.delete(waiter)
        })
      }),
    stop: (pid, graceMs) =>
      Effect.sync(() => {
        const proc = processes.get(pid)
        if (proc === undefined) return
        proc.stops.push(graceMs)
        finish(pid, { code: null, signal: "SIGTERM" })
      }),
    alive: (pid, startTicks) => {
      const proc = processes.get(pid)
      return proc !== undefined && proc.exit === null && (startTicks === null || proc.startTicks === startTicks)
    }
  })

  return {
    service,
    layer: Layer.succeed(ServiceProcesses, service),
    /** Every process started so far, in order. */
    started: (): ReadonlyArray<FakeServiceProcess> => [...processes.values()],
    /** Ends a process as if it had exited by itself. */
    exit: (pid: number, code: number | null, signal: string | null = null) => finish(pid, { code, signal }),
    /** From now on `start` fails with this (`null`: it succeeds again). */
    failStart: (detail: string | null) => {
      startFailure = detail === null ? null : new ServiceError({ reason: "spawn-failed", detail })
    }
  }
}
