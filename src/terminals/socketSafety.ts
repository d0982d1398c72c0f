import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Whether the agents' tmux socket can be trusted before any tmux client of
 * Warden's connects to it. Whoever owns the server on that socket sees every
 * command Warden sends (what is typed into the agents, their environment) and
 * runs the agents: a socket planted by another local user in a shared
 * directory such as `/tmp` would receive all of it.
 *
 * The rules, checked with `lstat` (a symlink is never followed):
 * - the socket, if it exists, is a socket, not a symlink, owned by the daemon's
 *   user, and not writable by others;
 * - its directory is owned by the daemon's user or by root, and not writable
 *   by group or others unless it has the sticky bit (as `/tmp` has), where no
 *   one can remove or rename a file that is not theirs. A symlinked directory
 *   is accepted only when the link itself is ours or root's.
 *
 * A missing socket is fine: tmux creates it as ours. In a sticky shared
 * directory another user could still create it between this check and tmux's
 * connect: a private directory (mode 0700) closes that too, and is the
 * recommended place.
 */
export const tmuxSocketProblem = (socket: string): string | null => {
  const uid = process.getuid?.()
  // Not a POSIX system: nothing to compare owners with.
  if (uid === undefined) return null
  const file = path.resolve(socket)
  const dir = path.dirname(file)
  const fix = `use a socket in a private directory (mkdir -m 0700 DIR; "tmuxSocket": "DIR/agents.sock" in the config)`
  const ownedByUs = (owner: number) => owner === uid
  const trustedOwner = (owner: number) => owner === uid || owner === 0

  let dirLink: fs.Stats
  try {
    dirLink = fs.lstatSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
    return `cannot check the tmux socket's directory ${dir}: ${(error as Error).message}`
  }
  if (dirLink.isSymbolicLink() && !trustedOwner(dirLink.uid)) {
    return `the tmux socket's directory ${dir} is a symlink owned by uid ${dirLink.uid}, not by this user (uid ${uid}) or root: ${fix}`
  }
  let dirStat: fs.Stats
  try {
    dirStat = fs.statSync(dir)
  } catch (error) {
    return `cannot check the tmux socket's directory ${dir}: ${(error as Error).message}`
  }
  if (!dirStat.isDirectory()) return `the tmux socket's directory ${dir} is not a directory: ${fix}`
  if (!trustedOwner(dirStat.uid)) {
    return `the tmux socket's directory ${dir} is owned by uid ${dirStat.uid}, not by this user (uid ${uid}) or root: ${fix}`
  }
  const sticky = (dirStat.mode & 0o1000) !== 0
  if ((dirStat.mode & 0o022) !== 0 && !sticky) {
    return `the tmux socket's directory ${dir} is writable by ${(dirStat.mode & 0o002) !== 0 ? "others" : "its group"} (mode ${(dirStat.mode & 0o7777).toString(8)}) without the sticky bit, so anyone there could replace the socket: ${fix}`
  }

  let sock: fs.Stats
  try {
    sock = fs.lstatSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
    return `cannot check the tmux socket ${file}: ${(error as Error).message}`
  }
  if (sock.isSymbolicLink()) return `the tmux socket ${file} is a symlink: refusing to follow it; remove it, or ${fix}`
  if (!sock.isSocket()) return `${file} is not a socket (the tmux socket path is taken by something else): ${fix}`
  if (!ownedByUs(sock.uid)) {
    return `the tmux socket ${file} belongs to uid ${sock.uid}, not to this user (uid ${uid}): another user's tmux server would see everything sent to the agents; ${fix}`
  }
  if ((sock.mode & 0o002) !== 0) {
    return `the tmux socket ${file} is writable by others (mode ${(sock.mode & 0o777).toString(8)}): anyone could drive the agents; chmod 600 it, or ${fix}`
  }
  return null
}
