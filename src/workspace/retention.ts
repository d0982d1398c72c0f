import * as fs from "node:fs"
import * as path from "node:path"
import type { RetentionConfig } from "../config/schema.js"
import type { WorkspacePaths } from "./paths.js"

const DAY_MS = 24 * 60 * 60 * 1000

/** How often the daemon sweeps, after the sweep at its start. */
export const SWEEP_INTERVAL_MS = 60 * 60 * 1000

/** What one sweep removed, and what it kept only because its bead is still live. */
export interface SweepReport {
  readonly removed: ReadonlyArray<string>
  readonly keptLive: ReadonlyArray<string>
}

const ATTEMPT_FILE = /^(.+)\.(att-[0-9a-f]+)\.(exit\.json|exit\.json\.tmp|prompt\.md|launch\.sh|launched\.json|settings\.json|env|log)$/
const BEAD_FILE = /^(.+)\.(status\.json|status\.json\.tmp|signals\.jsonl)$/

/** The bead a state file belongs to, from its name; null for a file that is none of the known kinds. */
export const beadOfFile = (dir: "watch" | "transcripts" | "requests", name: string): string | null => {
  if (dir === "requests") return name.endsWith(".json") ? name.slice(0, -".json".length) : null
  const attempt = ATTEMPT_FILE.exec(name)
  if (attempt !== null && (dir === "transcripts") === (attempt[3] === "log")) return attempt[1]!
  if (dir === "watch") return BEAD_FILE.exec(name)?.[1] ?? null
  return null
}

const readJson = (file: string): unknown => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))
  } catch {
    // missing or torn: treated as no record, so the sweep keeps what it cannot judge
    return null
  }
}

/**
 * The beads whose files must stay: a run record that is running or will
 * retry (or cannot be read: it is not judged finished), a snapshot the daemon
 * will restore, or a place in the queue.
 */
export const liveBeads = (paths: WorkspacePaths): Set<string> => {
  const live = new Set<string>()
  const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
  for (const name of list(paths.runs)) {
    if (!name.endsWith(".json")) continue
    const run = readJson(path.join(paths.runs, name)) as { status?: unknown; will_retry?: unknown } | null
    if (run === null || run.status === "running" || run.will_retry === true) live.add(name.slice(0, -".json".length))
  }
  for (const name of list(paths.daemon.snapshots)) if (name.endsWith(".json")) live.add(name.slice(0, -".json".length))
  const queue = readJson(paths.daemon.queue) as { items?: Array<{ bead?: unknown }> } | null
  for (const item of Array.isArray(queue?.items) ? queue.items : []) if (typeof item.bead === "string") live.add(item.bead)
  return live
}

/**
 * Removes what finished beads left behind once it is older than the
 * configured time (by its last write): transcripts after `transcriptsDays`,
 * the per-attempt and per-bead files of `state/watch/` and the retry requests
 * after `stateDays`. A bead that is still live keeps every file. Records and
 * memory notes are never removed. `now` is injected so a test can move time.
 */
export const sweepRetention = (paths: WorkspacePaths, retention: Pick<RetentionConfig, "transcriptsDays" | "stateDays">, now: number): SweepReport => {
  const live = liveBeads(paths)
  const removed: string[] = []
  const keptLive: string[] = []
  const sweep = (dir: string, kind: "watch" | "transcripts" | "requests", maxAgeMs: number) => {
    if (!fs.existsSync(dir)) return
    for (const name of fs.readdirSync(dir)) {
      const bead = beadOfFile(kind, name)
      if (bead === null) continue
      const file = path.join(dir, name)
      let stat: fs.Stats
      try {
        stat = fs.lstatSync(file)
      } catch {
        // removed meanwhile: nothing left to sweep
        continue
      }
      if (!stat.isFile() || now - stat.mtimeMs < maxAgeMs) continue
      if (live.has(bead)) {
        keptLive.push(file)
        continue
      }
      fs.rmSync(file, { force: true })
      removed.push(file)
    }
  }
  sweep(paths.transcripts, "transcripts", retention.transcriptsDays * DAY_MS)
  sweep(paths.watch, "watch", retention.stateDays * DAY_MS)
  sweep(paths.daemon.requests, "requests", retention.stateDays * DAY_MS)
  return { removed, keptLive }
}
