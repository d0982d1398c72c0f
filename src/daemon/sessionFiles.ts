import * as fs from "node:fs"
import * as path from "node:path"
import { templateNamePattern, templateNames } from "../templates/render.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/** The most of a transcript a download gives: its last 16 MiB. */
export const MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024

/** A bead's machine history (`state/history/<bead>.jsonl`), or null when the daemon never ran it. */
export const readHistory = (paths: WorkspacePaths, bead: string): { readonly file: string; readonly text: string } | null => {
  const file = paths.historyFile(bead)
  try {
    return { file, text: fs.readFileSync(file, "utf8") }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
    throw error
  }
}

/**
 * A transcript a run record names, read only when it lies in the workspace (a record is a file on disk: its
 * path is not trusted to point anywhere else); its last `MAX_TRANSCRIPT_BYTES` when longer.
 */
export const readTranscript = (paths: WorkspacePaths, transcriptPath: string | null): { readonly file: string; readonly text: Buffer; readonly truncated: boolean } | null => {
  if (transcriptPath === null) return null
  const root = fs.realpathSync(paths.root)
  let file: string
  try {
    file = fs.realpathSync(transcriptPath)
  } catch {
    // Not there (cleaned up by retention, or never written).
    return null
  }
  if (!file.startsWith(`${root}${path.sep}`)) return null
  const size = fs.statSync(file).size
  const start = Math.max(0, size - MAX_TRANSCRIPT_BYTES)
  const fd = fs.openSync(file, "r")
  try {
    const text = Buffer.alloc(size - start)
    fs.readSync(fd, text, 0, text.length, start)
    return { file, text, truncated: start > 0 }
  } finally {
    fs.closeSync(fd)
  }
}

/** `memory/<date>.md` notes: the day's text (empty when none), and the days that have notes, newest first. */
export const readMemory = (paths: WorkspacePaths, date: string): { readonly date: string; readonly text: string; readonly dates: ReadonlyArray<string> } => {
  let names: string[] = []
  try {
    names = fs.readdirSync(paths.memory)
  } catch {
    // No notes yet.
    names = []
  }
  const dates = names
    .map((name) => /^(\d{4}-\d{2}-\d{2})\.md$/.exec(name)?.[1])
    .filter((d): d is string => d !== undefined)
    .sort()
    .reverse()
  let text = ""
  try {
    text = fs.readFileSync(path.join(paths.memory, `${date}.md`), "utf8")
  } catch {
    // No notes that day.
    text = ""
  }
  return { date, text, dates }
}

/** The templates a dispatch may name: Warden's own and the workspace's (`<workspace>/templates/<name>.md`), sorted. */
export const listTemplates = (workspaceDir: string): ReadonlyArray<string> => {
  let own: string[] = []
  try {
    own = fs
      .readdirSync(workspaceDir)
      .filter((name) => name.endsWith(".md"))
      .map((name) => name.slice(0, -".md".length))
      .filter((name) => templateNamePattern.test(name))
  } catch {
    // No templates of the workspace's own.
    own = []
  }
  return [...new Set([...templateNames, ...own])].sort()
}
