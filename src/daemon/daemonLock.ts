import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { processStartTicks } from "../sessions/supervisorLiveness.js"

/** Why the daemon lock was not taken: `held` (another daemon has it), `flock-failed` (util-linux flock could not run or failed). */
export const DaemonLockedReason = Schema.Literal("held", "flock-failed")
export type DaemonLockedReason = typeof DaemonLockedReason.Type

/** The workspace's daemon lock was not taken; `detail` (the message) names its holder or why flock failed. */
export class DaemonLocked extends Schema.TaggedError<DaemonLocked>()("DaemonLocked", {
  file: Schema.String,
  reason: DaemonLockedReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The daemon's hold on its workspace: an exclusive flock(2) on the open lock file, dropped by the kernel when the process dies. */
export interface DaemonLock {
  /** Empties the file (its pid is no longer true) and closes it, which releases the lock. */
  readonly release: () => void
}

const holderOf = (file: string): string => {
  try {
    const holder = JSON.parse(fs.readFileSync(file, "utf8")) as { pid?: unknown }
    return typeof holder.pid === "number" ? `pid ${holder.pid}` : "a process that has not written its pid yet"
  } catch {
    // empty or torn: the holder took the lock and has not written its pid yet (it writes it only once the lock is its own)
    return "a process that has not written its pid yet"
  }
}

/**
 * Takes the workspace's daemon lock or throws `DaemonLocked` naming its holder. The lock is
 * an exclusive `flock(2)` on the open file, taken by util-linux
 * `flock -xn 3` run with this process's descriptor as its fd 3 (a lock
 * belongs to the open file description, so it stays with this process after
 * `flock` exits). No read-check-remove-create: whoever the kernel gives the
 * lock to is the one daemon, and a dead daemon's lock is gone with it. The
 * pid is written only once the lock is ours. The file itself is never
 * removed: a daemon that opened it before a removal would lock a file nobody
 * else can see.
 */
export const acquireDaemonLock = (file: string): DaemonLock => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  // O_CLOEXEC (Node's default) keeps the descriptor, and so the lock, out of every child but `flock`.
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
  const taken = spawnSync("flock", ["-xn", "3"], { stdio: ["ignore", "ignore", "pipe", fd], encoding: "utf8" })
  if (taken.error !== undefined || taken.status !== 0) {
    fs.closeSync(fd)
    if (taken.status === 1) {
      throw new DaemonLocked({
        file,
        reason: "held",
        detail: `another warden daemon (${holderOf(file)}) runs for this workspace (it holds ${file})`
      })
    }
    const why = taken.error !== undefined ? taken.error.message : `flock exited ${taken.status ?? taken.signal}: ${taken.stderr.trim()}`
    throw new DaemonLocked({
      file,
      reason: "flock-failed",
      detail: `could not take the daemon lock ${file} with util-linux flock (${why}); is util-linux installed?`
    })
  }
  fs.ftruncateSync(fd, 0)
  fs.writeSync(fd, JSON.stringify({ pid: process.pid, proc_start: processStartTicks(process.pid) }), 0)
  fs.fsyncSync(fd)
  return {
    release: () => {
      try {
        fs.ftruncateSync(fd, 0)
      } finally {
        fs.closeSync(fd)
      }
    }
  }
}
