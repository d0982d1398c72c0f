import * as fs from "node:fs"
import * as path from "node:path"
import pino from "pino"
import type { RetentionConfig } from "../config/schema.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/**
 * True when this process's stdout is systemd's journal: `JOURNAL_STREAM`
 * names the device and inode of the stream systemd connected (systemd.exec(5));
 * comparing them with stdout's own tells a service from a shell that only
 * inherited the variable (an agent under a daemon run by systemd).
 */
export const stdoutIsJournal = (env: NodeJS.ProcessEnv = process.env): boolean => {
  const stream = env.JOURNAL_STREAM
  if (stream === undefined) return false
  try {
    const stat = fs.fstatSync(1)
    return stream === `${stat.dev}:${stat.ino}`
  } catch {
    // no stdout: not the log file
    return false
  }
}

/**
 * An append-only log file rotated by size: when a line would take it past
 * `maxBytes`, `file` becomes `file.1`, `file.1` becomes `file.2`, and so on
 * up to `file.<files>` (the oldest, dropped at the next rotation). Writes are
 * synchronous, so nothing is lost at exit. Another process writing the same
 * file (a foreground `dispatch --wait`) may rotate it first: the inode tells,
 * and this one then reopens instead of rotating again.
 */
export const rotatingFile = (file: string, maxBytes: number, files: number) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  let fd = fs.openSync(file, "a")
  const full = (size: number, bytes: number) => size > 0 && size + bytes > maxBytes
  const rotate = (bytes: number) => {
    fs.closeSync(fd)
    let current: fs.Stats | null = null
    try {
      current = fs.statSync(file)
    } catch {
      // removed by hand: start afresh
    }
    if (current !== null && full(current.size, bytes)) {
      for (let n = files - 1; n >= 1; n--) {
        if (fs.existsSync(`${file}.${n}`)) fs.renameSync(`${file}.${n}`, `${file}.${n + 1}`)
      }
      fs.renameSync(file, `${file}.1`)
    }
    fd = fs.openSync(file, "a")
  }
  return {
    write: (chunk: string): void => {
      const bytes = Buffer.byteLength(chunk)
      const mine = fs.fstatSync(fd)
      let onDisk: fs.Stats | null = null
      try {
        onDisk = fs.statSync(file)
      } catch {
        // removed: reopen below
      }
      if (onDisk === null || onDisk.ino !== mine.ino) {
        fs.closeSync(fd)
        fd = fs.openSync(file, "a")
      } else if (full(mine.size, bytes)) rotate(bytes)
      fs.writeSync(fd, chunk)
    },
    close: (): void => fs.closeSync(fd)
  }
}

/**
 * Warden's log: JSON lines in `state/warden.log` of the workspace, rotated by
 * size; with `journal` (the daemon under systemd, see `stdoutIsJournal`) on
 * stdout instead, for the journal to keep and rotate.
 */
export const openLogger = (
  paths: WorkspacePaths,
  bindings: Record<string, unknown> = {},
  options: Pick<RetentionConfig, "logMaxBytes" | "logFiles"> & { readonly journal?: boolean } = { logMaxBytes: 10 * 1024 * 1024, logFiles: 5 }
) =>
  pino(
    { level: process.env.WARDEN_LOG_LEVEL ?? "info", base: { pid: process.pid, ...bindings } },
    options.journal === true
      ? pino.destination({ dest: 1, sync: true })
      : rotatingFile(path.join(paths.root, "state", "warden.log"), options.logMaxBytes, options.logFiles)
  )
