import { spawnSync } from "node:child_process"
import { afterAll, describe, expect, it } from "vitest"
import { finalizeLostRun } from "../src/sessions/reconcile.js"
import { workspacePaths } from "../src/workspace/paths.js"
import { makeWorkspace } from "./support/workspace.js"

/** The seed's timestamp fields of each record (RECORDS.md); Warden's own fields may carry milliseconds. */
const seedTimeFields = ["started_at", "finished_at"] as const

/**
 * Parses each value exactly as the seed's run analyzer does: python3's
 * `datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")`. Returns python's error text, or "" when all parse.
 */
const seedAnalyzerParse = (values: ReadonlyArray<string>): string => {
  const script = [
    "import json, sys",
    "from datetime import datetime",
    "for v in json.load(sys.stdin):",
    '    datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")'
  ].join("\n")
  const run = spawnSync("python3", ["-c", script], { input: JSON.stringify(values), encoding: "utf8" })
  if (run.error) throw run.error
  return run.status === 0 ? "" : run.stderr
}

const ws = makeWorkspace()
afterAll(() => ws.cleanup())

describe("the records' seed timestamps", () => {
  it("the analyzer's strptime rejects milliseconds (the check can fail)", () => {
    expect(seedAnalyzerParse(["2026-12-01T23:17:29Z"])).toBe("")
    expect(seedAnalyzerParse(["2026-12-01T23:17:29.349Z"])).toMatch(/unconverted data remains|does not match format/)
  })

  it("every seed timestamp of both records of a real session parses with %Y-%m-%dT%H:%M:%SZ; the milliseconds are in Warden's fields", async () => {
    const repo = ws.makeRepo("repo-seed-times")
    const out = await ws.warden("dispatch", "bd-seedtime", "--repo", repo, "--agent", "shell", "--command", "echo a > a.txt; sleep 1.3", "--prompt", "x", "--wait")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const run = ws.readRun("bd-seedtime")
    const result = ws.readResult("bd-seedtime")
    const values = [run, result].flatMap((record) => seedTimeFields.map((field) => record[field]))
    expect(values.every((v) => typeof v === "string")).toBe(true)
    expect(seedAnalyzerParse(values)).toBe("")
    for (const record of [run, result]) {
      // Warden's precise times name the same second as the seed's fields.
      expect(record.started_at_precise).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      expect(record.started_at_precise.slice(0, 19) + "Z").toBe(record.started_at)
      expect(record.finished_at_precise.slice(0, 19) + "Z").toBe(record.finished_at)
      // The seed's duration is the difference of its two whole-second times.
      expect(record.duration_seconds).toBe((Date.parse(record.finished_at) - Date.parse(record.started_at)) / 1000)
    }
  })

  it("a run finalized as lost (its supervisor and session gone) keeps the seed's format too", () => {
    const run = ws.readRun("bd-seedtime")
    const running = { ...run, status: "running", finished_at: null, finished_at_precise: null }
    const { run: lostRun, result: lostResult } = finalizeLostRun(workspacePaths(ws.workspace), running, null, Date.parse(run.started_at_precise) + 65_432)
    const values = [lostRun.started_at, lostRun.finished_at!, lostResult.started_at, lostResult.finished_at!]
    expect(seedAnalyzerParse(values)).toBe("")
    expect(lostRun.finished_at_precise).toMatch(/\.\d{3}Z$/)
    expect(lostRun.duration_seconds).toBe((Date.parse(lostRun.finished_at!) - Date.parse(lostRun.started_at)) / 1000)
  })
})
