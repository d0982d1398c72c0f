import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Writes `data` whole and synced under a temporary name beside `file` (`.<name>.<pid>.<random>.tmp`, the
 * names `removeStaleTemps` cleans up after a killed writer) and returns that name, for a rename or a
 * link into place. `mode` is narrowed by the umask as for any new file, unless `exact`; with `gid`, the file
 * belongs to that group.
 */
export const writeSyncedTemp = (
  file: string,
  data: string | Buffer,
  options: { readonly mode: number; readonly exact?: boolean; readonly gid?: number | null }
): string => {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`)
  const fd = fs.openSync(temp, "wx", options.mode)
  try {
    if (options.gid !== undefined && options.gid !== null) fs.fchownSync(fd, process.getuid?.() ?? -1, options.gid)
    if (options.exact === true) fs.fchmodSync(fd, options.mode)
    fs.writeSync(fd, typeof data === "string" ? Buffer.from(data) : data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  return temp
}

/** Syncs a directory, so a rename or link in it survives a crash. */
export const syncDir = (dir: string): void => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Creates `file` whole, once: written and synced under a temporary name, then
 * linked into place (link(2) never replaces a file), so a crash leaves no
 * file or a whole one, and of two writers at once the first wins. Returns
 * false when the file was already there (the other writer's stays).
 */
export const createFileOnce = (file: string, data: string | Buffer, options: { readonly mode: number; readonly gid?: number | null }): boolean => {
  const temp = writeSyncedTemp(file, data, { ...options, exact: true })
  let created = true
  try {
    fs.linkSync(temp, file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    created = false
  } finally {
    fs.rmSync(temp, { force: true })
  }
  syncDir(path.dirname(file))
  return created
}
