import * as fs from "node:fs"
import * as path from "node:path"
import { Either, ParseResult, Schema } from "effect"
import { BeadId, DispatchBody } from "../sessions/dispatchBody.js"
import { SNAPSHOT_VERSION } from "./SnapshotStore.js"

/** `state/queue.json`: the beads waiting for a slot. */
export const QueueFile = Schema.Struct({
  seq: Schema.Int.pipe(Schema.nonNegative()),
  items: Schema.Array(
    Schema.Struct({
      bead: BeadId,
      profile: Schema.NonEmptyString,
      priority: Schema.Int.pipe(Schema.between(0, 4)),
      seq: Schema.Int,
      enqueuedAt: Schema.Number,
      retry: Schema.Boolean
    })
  )
})

/** `state/snapshots/<bead>.json`: one unfinished session's actor (the version is checked apart, so another one is refused, not quarantined). */
export const SnapshotFile = Schema.Struct({
  version: Schema.Number,
  bead: BeadId,
  request: DispatchBody,
  actor: Schema.Struct({
    status: Schema.Literal("active", "done", "error", "stopped"),
    value: Schema.Union(Schema.String, Schema.Object),
    context: Schema.Struct({ bead: Schema.String, attempt: Schema.Int })
  }),
  history: Schema.Array(Schema.Struct({ state: Schema.String, at: Schema.Number, attempt: Schema.Number })),
  savedAt: Schema.Number
})

/** `state/requests/<bead>.json`: a bead's last dispatch request, for `retry`. */
export const RequestFile = DispatchBody

/** A state file that did not decode, moved aside so it is kept for a post-mortem and never read again. */
export interface QuarantinedFile {
  readonly file: string
  readonly moved_to: string
  readonly reason: string
  readonly at: string
  /** What was done about what it held. */
  readonly recovery: string
}

/** Why `doc` is not a valid `schema`, or null when it is. */
const problem = (schema: Schema.Schema<any, any, never>, text: string): string | null => {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (error) {
    return `not JSON: ${(error as Error).message}`
  }
  const decoded = Schema.decodeUnknownEither(schema, { errors: "all" })(doc)
  return Either.isLeft(decoded) ? ParseResult.TreeFormatter.formatErrorSync(decoded.left).replace(/\s+/g, " ").slice(0, 500) : null
}

/** Moves `file` aside as `<file>.corrupt-<time>`; a file that cannot be moved stops the start-up, naming it. */
const moveAside = (file: string, reason: string, recovery: string, now: number): QuarantinedFile => {
  const at = new Date(now).toISOString()
  const movedTo = `${file}.corrupt-${at.replace(/[:.]/g, "-")}`
  try {
    fs.renameSync(file, movedTo)
  } catch (error) {
    throw new Error(`state file ${file} is corrupt (${reason}) and could not be moved aside: ${(error as Error).message}; move or remove it, then start again`)
  }
  return { file, moved_to: movedTo, reason, at, recovery }
}

const readOrNull = (file: string): string | null => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
    throw new Error(`state file ${file} cannot be read: ${(error as Error).message}; fix its permissions, then start again`)
  }
}

const jsonFiles = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith(".json") && !name.startsWith(".")).map((name) => path.join(dir, name)) : []

/**
 * Decodes every state file the daemon reads at start-up against its schema
 * and moves aside each one that does not decode. What it held is rebuilt from
 * the other files: the queue from the snapshots of the queued beads (restore
 * enqueues them again), a session from its run and launch records (see
 * `recoverCorruptSnapshot`); a dispatch request only serves `retry` and is
 * lost. A file that cannot be read or moved aside stops the start, named.
 */
export const quarantineCorruptStateFiles = (
  files: { readonly queue: string; readonly snapshots: string; readonly requests: string },
  now: number = Date.now()
): ReadonlyArray<QuarantinedFile> => {
  const quarantined: QuarantinedFile[] = []
  const queue = readOrNull(files.queue)
  if (queue !== null) {
    const why = problem(QueueFile, queue)
    if (why !== null) quarantined.push(moveAside(files.queue, why, "the queue is rebuilt from the snapshots of the queued beads", now))
  }
  for (const file of jsonFiles(files.snapshots)) {
    const text = readOrNull(file)
    if (text === null) continue
    // Another version is refused by the snapshot store with its own message, not taken for corruption.
    let version: unknown
    try {
      version = (JSON.parse(text) as { version?: unknown }).version
    } catch {
      // not JSON: left to the quarantine below, which names it
      version = SNAPSHOT_VERSION
    }
    if (version !== SNAPSHOT_VERSION) continue
    const why = problem(SnapshotFile, text)
    if (why !== null) quarantined.push(moveAside(file, why, "the session is ended and its records finalized from its run record", now))
  }
  for (const file of jsonFiles(files.requests)) {
    const text = readOrNull(file)
    if (text === null) continue
    const why = problem(RequestFile, text)
    if (why !== null) quarantined.push(moveAside(file, why, "lost: `warden retry` of this bead needs a new dispatch", now))
  }
  return quarantined
}

/** The bead a quarantined snapshot belonged to (its file name). */
export const snapshotBead = (q: QuarantinedFile, snapshotsDir: string): string | null =>
  path.dirname(q.file) === snapshotsDir && q.file.endsWith(".json") ? path.basename(q.file, ".json") : null
