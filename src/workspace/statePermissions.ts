import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { WorkspacePaths } from "./paths.js"

/**
 * Who may read the workspace's state (records, transcripts, snapshots, retry
 * requests, prompts, launchers, signal logs, memory notes, the log): its owner
 * only (dirs 0700, files 0600), or also the configured operators' group (dirs
 * 02750, so new files take the group, files 0640).
 */
export interface StateAccess {
  /** The process umask while Warden writes: 077, or 027 with an operators' group. */
  readonly umask: number
  readonly dirMode: number
  /** The bits a file keeps (the owner's, plus the group's read and execute with an operators' group). */
  readonly fileMask: number
  readonly gid: number | null
}

/** The gid of a group name (or a number), or null when this machine knows no such group. */
export const lookupGroup = (name: string): number | null => {
  if (/^\d+$/.test(name)) return Number(name)
  const found = spawnSync("getent", ["group", name], { encoding: "utf8" })
  const gid = found.status === 0 ? Number(found.stdout.split(":")[2]) : NaN
  return Number.isInteger(gid) ? gid : null
}

/** The umask Warden writes with: private, or readable by the operators' group (no group lookup needed). */
export const umaskFor = (operatorsGroup: string | undefined): number => (operatorsGroup === undefined ? 0o077 : 0o027)

let operatorUmask: number | null = null
let currentStateUmask: number | null = null

/**
 * Sets the process umask for Warden's own writes; remembers the operator's
 * first, for the agents (see `agentUmask`). Child processes inherit it: the
 * tmux server Warden starts and every pane in it.
 */
export const restrictUmask = (access: Pick<StateAccess, "umask">): void => {
  const before = process.umask(access.umask)
  currentStateUmask = access.umask
  if (operatorUmask === null) operatorUmask = before
}

/**
 * The umask the agent runs with: the operator's, as it was before Warden
 * restricted its own, so the files an agent writes in the repo get their
 * usual modes. The launcher sets it before it starts the agent.
 */
export const agentUmask = (): string => (operatorUmask ?? 0o022).toString(8).padStart(4, "0")

/** The umask Warden writes its state with, for the launcher's own files (the exit file). */
export const stateUmask = (): string => (currentStateUmask ?? 0o077).toString(8).padStart(4, "0")

/** The directories of the workspace that hold state: what `tightenState` walks. */
const stateDirs = (paths: WorkspacePaths): ReadonlyArray<string> => [path.join(paths.root, "state"), paths.memory]

const tightenOne = (file: string, stat: fs.Stats, access: StateAccess, isDir: boolean): void => {
  // Only the owner may change a mode: an operator of the group reading the state leaves the owner's files as they are.
  const uid = process.getuid?.() ?? 0
  if (uid !== 0 && stat.uid !== uid) return
  const chown = access.gid !== null && stat.gid !== access.gid
  if (chown) fs.chownSync(file, stat.uid, access.gid!)
  const mode = isDir ? access.dirMode : stat.mode & access.fileMask
  // chown clears the set-group-id bit: set the mode again after it.
  if (chown || (stat.mode & 0o7777) !== mode) {
    try {
      fs.chmodSync(file, mode)
    } catch (error) {
      // systemd's RestrictSUIDSGID=yes refuses the set-group-id bit: new files then take the daemon's own group
      // (run it with Group= the operators' group), and the daemon's start gives older ones the group.
      if ((error as NodeJS.ErrnoException).code !== "EPERM" || (mode & 0o2000) === 0) throw error
      fs.chmodSync(file, mode & ~0o2000)
    }
  }
}

/**
 * Creates the workspace's state directories with their mode and tightens what
 * is already there (an older Warden left files 0644): every directory to the
 * directory mode, every file to at most the file mask, owned by the operators'
 * group when one is configured. Symlinks are left alone, never followed.
 * `deep: false` fixes only the directories (cheap, for every CLI command: a
 * file in a 0700 directory is out of others' reach); the daemon walks it all.
 */
export const tightenState = (paths: WorkspacePaths, access: StateAccess, deep: boolean): void => {
  const top = [paths.runs, paths.results, paths.watch, paths.transcripts, paths.memory, paths.history]
  for (const dir of top) fs.mkdirSync(dir, { recursive: true, mode: access.dirMode & 0o777 })
  const walk = (dir: string): void => {
    let stat: fs.Stats
    try {
      stat = fs.lstatSync(dir)
    } catch {
      // removed meanwhile: nothing to tighten
      return
    }
    if (!stat.isDirectory()) return
    tightenOne(dir, stat, access, true)
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(file)
      else if (entry.isFile()) {
        try {
          tightenOne(file, fs.lstatSync(file), access, false)
        } catch {
          // removed meanwhile (a temp file renamed into place)
        }
      }
    }
  }
  if (deep) {
    for (const dir of stateDirs(paths)) walk(dir)
    return
  }
  // Shallow, for every CLI command: the known directories only, without listing what is in them.
  for (const dir of [...stateDirs(paths), ...top, path.dirname(paths.daemon.snapshots), paths.daemon.snapshots, paths.daemon.requests]) {
    try {
      const stat = fs.lstatSync(dir)
      if (stat.isDirectory()) tightenOne(dir, stat, access, true)
    } catch {
      // not there (yet)
    }
  }
}
