import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { RunRecord } from "../src/records/recordSchema.js"
import { makeWorkspace } from "./support/workspace.js"

/**
 * The sessions' notifying step: a configured command (a stand-in `openclaw` on disk that records
 * its argv) is run once per finished attempt with the seed's wake text as one argument, its
 * delivery kept in the run record; a command that fails leaves the bead's outcome as it was.
 */
const bin = fs.mkdtempSync(path.join(os.tmpdir(), "warden-notify-bin-"))
const argvLog = path.join(bin, "argv.log")
const openclaw = path.join(bin, "openclaw")
fs.writeFileSync(
  openclaw,
  `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> '${argvLog}'\nprintf -- '--\\n' >> '${argvLog}'\ncase "$3" in *bd-wake-fails*) echo "gateway unreachable" >&2; exit 3 ;; esac\n`,
  { mode: 0o755 }
)
const ws = makeWorkspace({ notify: { command: { argv: [openclaw, "cron", "wake", "{text}"] } }, verification: { requireChanges: false, repoTests: false } })
afterAll(() => {
  ws.cleanup()
  fs.rmSync(bin, { recursive: true, force: true })
})

const calls = () =>
  fs
    .readFileSync(argvLog, "utf8")
    .split("--\n")
    .filter((c) => c !== "")
    .map((c) => c.trimEnd().split("\n"))

describe("the notifying step", () => {
  it("wakes the coordinator once per finished attempt with the seed's text, kept in the run record; a failing command never fails the bead", async () => {
    const repo = ws.makeRepo("repo-wake")
    const ok = await ws.warden("dispatch", "bd-wake", "--repo", repo, "--agent", "shell", "--command", "echo hi; exit 0", "--wait")
    expect(ok.status, ok.stderr).toBe(0)
    const [call] = calls()
    expect(call!.slice(0, 2)).toEqual(["cron", "wake"])
    expect(call![2]).toMatch(/^Agent bd-wake done \(\d+s, [a-z-]+, attempt 1\/1, reason: .+\)$/)
    expect(call).toHaveLength(3)
    const run = ws.readRun("bd-wake")
    expect(run.notify).toMatchObject({ channel: "command", ok: true, text: call![2] })
    expect(() => Schema.decodeUnknownSync(RunRecord, { onExcessProperty: "error" })(run)).not.toThrow()

    const failing = await ws.warden("dispatch", "bd-wake-fails", "--repo", ws.makeRepo("repo-wake-fails"), "--agent", "shell", "--command", "exit 0", "--wait")
    expect(failing.status, failing.stderr).toBe(0)
    const failed = ws.readRun("bd-wake-fails")
    expect(failed.status).toBe("done")
    expect(failed.notify).toMatchObject({ channel: "command", ok: false, detail: expect.stringMatching(/exited 3: gateway unreachable/) })
    expect(calls()).toHaveLength(2)
  })
})
