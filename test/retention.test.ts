import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { openLogger, rotatingFile } from "../src/cli/logger.js"
import { workspacePaths } from "../src/workspace/paths.js"
import { beadOfFile, sweepRetention } from "../src/workspace/retention.js"

const DAY = 24 * 60 * 60 * 1000
const policy = { transcriptsDays: 14, stateDays: 30 }
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A workspace with real files whose last write is `writtenAt`. */
const scratch = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "warden-retention-"))
  dirs.push(root)
  const paths = workspacePaths(root)
  const write = (file: string, text: string, writtenAt: number) => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text)
    fs.utimesSync(file, new Date(writtenAt), new Date(writtenAt))
    return file
  }
  const record = (bead: string, status: string, willRetry = false) =>
    write(paths.runFile(bead), JSON.stringify({ bead, status, will_retry: willRetry }), 0)
  /** Every file a finished attempt of `bead` can leave, written at `at`. */
  const attemptFiles = (bead: string, attemptId: string, at: number) => ({
    transcript: write(paths.transcriptFile(bead, attemptId), "output\n", at),
    state: [
      write(paths.promptFile(bead, attemptId), "prompt", at),
      write(paths.launcherFile(bead, attemptId), "#!/bin/sh", at),
      write(paths.settingsFile(bead, attemptId), "{}", at),
      write(paths.launchRecordFile(bead, attemptId), "{}", at),
      write(paths.exitFile(bead, attemptId), "{}", at),
      write(paths.signalsFile(bead), "{}\n", at),
      write(paths.statusFile(bead), "{}", at),
      write(path.join(root, "state", "requests", `${bead}.json`), "{}", at)
    ]
  })
  return { root, paths, write, record, attemptFiles }
}

describe("the retention sweep", () => {
  it("names the bead of every kind of file, dotted bead ids included", () => {
    expect(beadOfFile("transcripts", "bd-a1.2.att-0123456789abcdef.log")).toBe("bd-a1.2")
    expect(beadOfFile("watch", "bd-a1.2.att-0123456789abcdef.launch.sh")).toBe("bd-a1.2")
    expect(beadOfFile("watch", "bd-a1.2.signals.jsonl")).toBe("bd-a1.2")
    expect(beadOfFile("watch", "bd-x.status.json")).toBe("bd-x")
    expect(beadOfFile("requests", "bd-x.json")).toBe("bd-x")
    expect(beadOfFile("watch", "notes.txt")).toBeNull()
    expect(beadOfFile("transcripts", "bd-x.att-0123456789abcdef.prompt.md")).toBeNull()
  })

  it("keeps a finished bead's transcript until transcriptsDays have passed since its last write, then removes it", () => {
    const ws = scratch()
    const t0 = Date.UTC(2026, 11, 1)
    ws.record("bd-done", "done")
    const { transcript } = ws.attemptFiles("bd-done", "att-00000000000000aa", t0)
    expect(sweepRetention(ws.paths, policy, t0 + 13 * DAY).removed).toEqual([])
    expect(fs.existsSync(transcript)).toBe(true)
    const report = sweepRetention(ws.paths, policy, t0 + 14 * DAY + 1)
    expect(report.removed).toEqual([transcript])
    expect(fs.existsSync(transcript)).toBe(false)
  })

  it("keeps a finished bead's per-attempt files and retry request until stateDays, then removes them all; its records stay", () => {
    const ws = scratch()
    const t0 = Date.UTC(2026, 11, 1)
    ws.record("bd-done.1", "failed")
    ws.write(ws.paths.resultFile("bd-done.1"), "{}", 0)
    const { transcript, state } = ws.attemptFiles("bd-done.1", "att-00000000000000bb", t0)
    // The transcript's shorter time has passed; the other files stay.
    expect(sweepRetention(ws.paths, policy, t0 + 29 * DAY).removed).toEqual([transcript])
    expect(state.every((file) => fs.existsSync(file))).toBe(true)
    const report = sweepRetention(ws.paths, policy, t0 + 30 * DAY + 1)
    expect([...report.removed].sort()).toEqual([...state].sort())
    expect(state.some((file) => fs.existsSync(file))).toBe(false)
    expect(fs.existsSync(ws.paths.runFile("bd-done.1"))).toBe(true)
    expect(fs.existsSync(ws.paths.resultFile("bd-done.1"))).toBe(true)
  })

  it("never removes the files of a live bead: running, waiting to retry, with a snapshot, or queued, or with an unreadable record", () => {
    const ws = scratch()
    const t0 = Date.UTC(2026, 11, 1)
    ws.record("bd-running", "running")
    ws.record("bd-retrying", "failed", true)
    ws.record("bd-restoring", "done")
    ws.write(path.join(ws.root, "state", "snapshots", "bd-restoring.json"), "{}", t0)
    ws.write(path.join(ws.root, "state", "queue.json"), JSON.stringify({ seq: 1, items: [{ bead: "bd-queued", seq: 1 }] }), t0)
    ws.write(ws.paths.runFile("bd-torn"), "{\"bead\":", 0)
    const kept = ["bd-running", "bd-retrying", "bd-restoring", "bd-queued", "bd-torn"].flatMap((bead) => {
      const files = ws.attemptFiles(bead, "att-00000000000000cc", t0)
      return [files.transcript, ...files.state]
    })
    const report = sweepRetention(ws.paths, policy, t0 + 365 * DAY)
    expect(report.removed).toEqual([])
    expect([...report.keptLive].sort()).toEqual([...kept].sort())
    expect(kept.every((file) => fs.existsSync(file))).toBe(true)
  })
})

describe("the daemon's log", () => {
  it("rotates at its size, keeping the configured number of old files", () => {
    const ws = scratch()
    const file = path.join(ws.root, "state", "warden.log")
    const log = rotatingFile(file, 1024, 2)
    const line = `${"x".repeat(99)}\n`
    for (let i = 0; i < 50; i++) log.write(line)
    log.close()
    const sizes = fs.readdirSync(path.dirname(file)).sort().map((name) => [name, fs.statSync(path.join(path.dirname(file), name)).size])
    // 5000 bytes in 1000-byte files (10 lines each): the newest three are kept, the rest dropped.
    expect(sizes).toEqual([
      ["warden.log", 1000],
      ["warden.log.1", 1000],
      ["warden.log.2", 1000]
    ])
  })

  it("the logger itself rotates at the configured size", () => {
    const ws = scratch()
    const logger = openLogger(ws.paths, { test: true }, { logMaxBytes: 2048, logFiles: 1 })
    for (let i = 0; i < 100; i++) logger.info({ i }, "a line of the daemon's log")
    const dir = path.join(ws.root, "state")
    expect(fs.readdirSync(dir).sort()).toEqual(["warden.log", "warden.log.1"])
    for (const name of ["warden.log", "warden.log.1"]) expect(fs.statSync(path.join(dir, name)).size).toBeLessThanOrEqual(2048)
    expect(fs.readFileSync(path.join(dir, "warden.log"), "utf8")).toContain('"i":99')
  })

  it("under systemd (stdout is the journal) the daemon writes it to stdout, not to warden.log", () => {
    const ws = scratch()
    const out = path.join(ws.root, "journal.out")
    const fd = fs.openSync(out, "w")
    const stat = fs.fstatSync(fd)
    const logger = path.resolve("dist/src/cli/logger.js")
    const script = `const m = await import(${JSON.stringify(logger)}); const l = m.openLogger({ root: ${JSON.stringify(ws.root)} }, {}, { logMaxBytes: 4096, logFiles: 1, journal: m.stdoutIsJournal() }); l.info("to the journal")`
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", fd, "pipe"],
      env: { ...process.env, JOURNAL_STREAM: `${stat.dev}:${stat.ino}` },
      encoding: "utf8"
    })
    fs.closeSync(fd)
    expect(child.status, child.stderr).toBe(0)
    expect(fs.readFileSync(out, "utf8")).toContain("to the journal")
    expect(fs.existsSync(path.join(ws.root, "state", "warden.log"))).toBe(false)
    // Only inheriting the variable (an agent's shell under such a daemon) is not the journal.
    const inherited = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, JOURNAL_STREAM: `${stat.dev}:${stat.ino}` },
      encoding: "utf8"
    })
    expect(inherited.status, inherited.stderr).toBe(0)
    expect(fs.readFileSync(path.join(ws.root, "state", "warden.log"), "utf8")).toContain("to the journal")
  })
})
