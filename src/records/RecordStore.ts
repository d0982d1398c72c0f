import * as fs from "node:fs"
import * as path from "node:path"
import { syncDir, writeSyncedTemp } from "../workspace/atomicFiles.js"
import { Context, Effect, Layer, Schema } from "effect"
import type { ResultRecord, RunRecord } from "./recordSchema.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/** Why a record could not be read or written: `unreadable` (cannot be read), `invalid` (not JSON), `write-failed`. */
export const RecordErrorReason = Schema.Literal("unreadable", "invalid", "write-failed")
export type RecordErrorReason = typeof RecordErrorReason.Type

/** A record file of the workspace could not be read or written; `detail` (the message) is Node's or the parser's words. */
export class RecordError extends Schema.TaggedError<RecordError>()("RecordError", {
  file: Schema.String,
  reason: RecordErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The records of the workspace: run and result files (atomic), and the daily memory file. */
export class RecordStore extends Context.Tag("warden/RecordStore")<
  RecordStore,
  {
    /** Writes both records of a bead, each atomically (temp file, fsync, rename). */
    readonly write: (run: RunRecord, result: ResultRecord) => Effect.Effect<void, RecordError>
    readonly readRun: (bead: string) => Effect.Effect<RunRecord | null, RecordError>
    readonly readResult: (bead: string) => Effect.Effect<ResultRecord | null, RecordError>
    /** Every run record in the workspace (unreadable files are skipped and reported). */
    readonly listRuns: Effect.Effect<{ readonly runs: ReadonlyArray<RunRecord>; readonly unreadable: ReadonlyArray<string> }>
    /** Appends a line to `memory/<date>.md` (the server's local date). */
    readonly appendMemory: (date: string, line: string) => Effect.Effect<void, RecordError>
  }
>() {}

/** Write `data` to `file` so that a reader sees the old or the new whole file, never a part, and a crash keeps one of them. */
export const writeFileAtomic = (file: string, data: string): void => {
  const temp = writeSyncedTemp(file, data, { mode: 0o644 })
  fs.renameSync(temp, file)
  syncDir(path.dirname(file))
}

const readJsonFile = <T>(file: string): Effect.Effect<T | null, RecordError> =>
  Effect.suspend(() => {
    let text: string
    try {
      text = fs.readFileSync(file, "utf8")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(null)
      return Effect.fail(new RecordError({ file, reason: "unreadable", detail: (error as Error).message }))
    }
    return Effect.try({
      try: () => JSON.parse(text) as T,
      catch: (error) => new RecordError({ file, reason: "invalid", detail: (error as Error).message })
    })
  })

export const makeFileRecordStore = (paths: WorkspacePaths) =>
  RecordStore.of({
    write: (run, result) =>
      Effect.try({
        // Synchronously: a record write is small and its latency is what completion detection is measured by;
        // queued behind the thread pool's other work (snapshots) it would wait for seconds under load.
        try: () => {
          writeFileAtomic(paths.runFile(run.bead), `${JSON.stringify(run, null, 2)}\n`)
          writeFileAtomic(paths.resultFile(result.bead), `${JSON.stringify(result, null, 2)}\n`)
        },
        catch: (error) => new RecordError({ file: paths.runFile(run.bead), reason: "write-failed", detail: (error as Error).message })
      }),
    readRun: (bead) => readJsonFile<RunRecord>(paths.runFile(bead)),
    readResult: (bead) => readJsonFile<ResultRecord>(paths.resultFile(bead)),
    listRuns: Effect.sync(() => {
      const runs: RunRecord[] = []
      const unreadable: string[] = []
      const names = fs.existsSync(paths.runs) ? fs.readdirSync(paths.runs) : []
      for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort()) {
        const file = path.join(paths.runs, name)
        try {
          runs.push(JSON.parse(fs.readFileSync(file, "utf8")) as RunRecord)
        } catch {
          // not swallowed: reported to the caller in `unreadable`, with its path
          unreadable.push(file)
        }
      }
      return { runs, unreadable }
    }),
    appendMemory: (date, line) =>
      Effect.try({
        try: () => {
          fs.mkdirSync(paths.memory, { recursive: true })
          const file = path.join(paths.memory, `${date}.md`)
          fs.appendFileSync(file, `${line}\n`)
        },
        catch: (error) =>
          new RecordError({ file: path.join(paths.memory, `${date}.md`), reason: "write-failed", detail: (error as Error).message })
      })
  })

export const fileRecordStoreLayer = (paths: WorkspacePaths) => Layer.succeed(RecordStore, makeFileRecordStore(paths))

/** The test layer: records kept in maps, inspectable by the test. */
export const makeMemoryRecordStore = () => {
  const runs = new Map<string, RunRecord>()
  const results = new Map<string, ResultRecord>()
  const memory = new Map<string, string[]>()
  const writes: Array<{ run: RunRecord; result: ResultRecord }> = []
  const service = RecordStore.of({
    write: (run, result) =>
      Effect.sync(() => {
        runs.set(run.bead, run)
        results.set(result.bead, result)
        writes.push({ run, result })
      }),
    readRun: (bead) => Effect.sync(() => runs.get(bead) ?? null),
    readResult: (bead) => Effect.sync(() => results.get(bead) ?? null),
    listRuns: Effect.sync(() => ({ runs: [...runs.values()], unreadable: [] })),
    appendMemory: (date, line) =>
      Effect.sync(() => {
        if (!(memory.get(date) ?? []).includes(line)) memory.set(date, [...(memory.get(date) ?? []), line])
      })
  })
  return { service, runs, results, memory, writes, layer: Layer.succeed(RecordStore, service) }
}
