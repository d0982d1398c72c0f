import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Creates `file` whole, once: written and synced under a temporary name, then
 * linked into place (link(2) never replaces a file), so a crash leaves no
 * file or a whole one, and of two writers at once the first wins. Returns
 * false when the file was already there (the other writer's stays).
 */
export const createFileOnce = (file: string, data: string | Buffer, options: { readonly mode: number; readonly gid?: number | null }): boolean => {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`)
  const fd = fs.openSync(temp, "wx", options.mode)
  try {
    if (options.gid !== undefined && options.gid !== null) fs.fchownSync(fd, process.getuid?.() ?? -1, options.gid)
    // The umask narrowed the mode at open: the file gets exactly the mode asked for.
    fs.fchmodSync(fd, options.mode)
    fs.writeSync(fd, typeof data === "string" ? Buffer.from(data) : data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  let created = true
  try {
    fs.linkSync(temp, file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    created = false
  } finally {
    fs.rmSync(temp, { force: true })
  }
  const dirFd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(dirFd)
  } finally {
    fs.closeSync(dirFd)
  }
  return created
}
