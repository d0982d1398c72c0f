import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace } from "./support/workspace.js"

/** Every directory and file under `dir` (symlinks not followed), with its mode and group. */
const walk = (dir: string): Array<{ file: string; mode: number; gid: number; isDir: boolean }> => {
  const out: Array<{ file: string; mode: number; gid: number; isDir: boolean }> = []
  const visit = (p: string) => {
    const stat = fs.lstatSync(p)
    out.push({ file: p, mode: stat.mode & 0o7777, gid: stat.gid, isDir: stat.isDirectory() })
    if (stat.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name))
  }
  visit(dir)
  return out
}

const octal = (n: number) => `0${n.toString(8)}`
// The operator's umask, which the agent must keep: the suite runs with one that lets others read (022 or 002).
const operatorUmask = process.umask()
const DAY = 24 * 60 * 60 * 1000

describe("the workspace's state is private to its owner", () => {
  const ws = makeWorkspace()
  let daemon: Awaited<ReturnType<typeof ws.startDaemon>> | null = null
  afterAll(async () => {
    if (daemon !== null) {
      daemon.child.kill("SIGTERM")
      await exited(daemon.child)
    }
    ws.cleanup()
  })

  it("after a real session through the daemon no file under state/ or memory/ is readable by group or others (old 0644 files included); the agent's repo file keeps the operator's umask", async () => {
    expect(operatorUmask & 0o044, "the suite's umask lets others read, so the check means something").toBe(0)
    // What an older Warden left: world-readable directories and files, and a finished bead's old transcript.
    const state = path.join(ws.workspace, "state")
    for (const dir of ["runs", "watch", "transcripts"]) fs.mkdirSync(path.join(state, dir), { recursive: true, mode: 0o755 })
    fs.mkdirSync(path.join(ws.workspace, "memory"), { recursive: true, mode: 0o755 })
    fs.writeFileSync(path.join(state, "runs", "bd-older.json"), JSON.stringify({ bead: "bd-older", status: "done", will_retry: false }), { mode: 0o644 })
    fs.writeFileSync(path.join(ws.workspace, "memory", "2026-01-01.md"), "- Bead `bd-older`: ...\n", { mode: 0o644 })
    const oldTranscript = path.join(state, "transcripts", "bd-older.att-0123456789abcdef.log")
    fs.writeFileSync(oldTranscript, "what the agent printed, a password included\n", { mode: 0o644 })
    fs.utimesSync(oldTranscript, new Date(Date.now() - 20 * DAY), new Date(Date.now() - 20 * DAY))
    for (const dir of [state, path.join(state, "runs")]) fs.chmodSync(dir, 0o755)

    daemon = await ws.startDaemon()
    const repo = ws.makeRepo("repo-modes")
    // The agent writes a repo file, signals through the CLI (which appends to the signal log), and exits 0.
    const out = await ws.warden(
      "dispatch", "bd-modes", "--repo", repo, "--agent", "shell", "--prompt", "x",
      "--command", 'echo made > made.txt && warden signal bd-modes --status done --summary ok; sleep 30'
    )
    expect(out.status, out.stdout + out.stderr).toBe(0)
    await eventually(() => ws.readRun("bd-modes")?.status === "done", 60_000, "bd-modes done")
    // Settled: the finished session's snapshot is removed (no write is in flight while the test walks the tree).
    await eventually(() => !fs.existsSync(path.join(state, "snapshots", "bd-modes.json")), 20_000, "bd-modes settled")

    const entries = [...walk(state), ...walk(path.join(ws.workspace, "memory"))]
    const files = entries.filter((e) => !e.isDir).map((e) => path.relative(ws.workspace, e.file))
    for (const expected of ["state/runs/bd-modes.json", "state/results/bd-modes.json", "state/warden.log", "state/api-token", "state/runs/bd-older.json", "memory/2026-01-01.md"]) {
      expect(files).toContain(expected)
    }
    expect(files.some((f) => /^state\/transcripts\/bd-modes\.att-[0-9a-f]+\.log$/.test(f))).toBe(true)
    expect(files).toContain("state/watch/bd-modes.signals.jsonl")
    expect(files).toContain("state/requests/bd-modes.json")
    const open = entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${path.relative(ws.workspace, e.file)} ${octal(e.mode)}`)
    expect(open).toEqual([])
    expect(entries.filter((e) => e.isDir).every((e) => e.mode === 0o700)).toBe(true)

    // The agent's own umask is the operator's: its repo file is as readable as any the operator makes.
    expect(octal(fs.statSync(path.join(repo, "made.txt")).mode & 0o777)).toBe(octal(0o666 & ~operatorUmask))
    // The retention sweep at the daemon's start removed the finished bead's 20-day-old transcript.
    expect(fs.existsSync(oldTranscript)).toBe(false)
  })
})

describe("with an operators' group", () => {
  const ws = makeWorkspace({ operatorsGroup: "daemon" })
  afterAll(() => ws.cleanup())

  it("the state is 0750/0640 and owned by that group; the agent's repo file keeps the operator's umask", async () => {
    const gid = Number(fs.readFileSync("/etc/group", "utf8").split("\n").find((l) => l.startsWith("daemon:"))!.split(":")[2])
    const repo = ws.makeRepo("repo-group")
    const out = await ws.warden("dispatch", "bd-group", "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", "echo made > made.txt", "--wait")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const entries = [...walk(path.join(ws.workspace, "state")), ...walk(path.join(ws.workspace, "memory"))]
    const files = entries.filter((e) => !e.isDir).map((e) => path.relative(ws.workspace, e.file))
    expect(files).toEqual(expect.arrayContaining(["state/runs/bd-group.json", "state/results/bd-group.json", "state/warden.log"]))
    expect(files.some((f) => f.startsWith("state/transcripts/bd-group."))).toBe(true)
    expect(files.some((f) => f.startsWith("memory/"))).toBe(true)
    const wrong = entries
      .filter((e) => e.gid !== gid || (e.isDir ? e.mode !== 0o2750 : (e.mode & 0o027) !== 0 || (e.mode & 0o040) === 0))
      .map((e) => `${path.relative(ws.workspace, e.file)} ${octal(e.mode)} gid ${e.gid}`)
    expect(wrong).toEqual([])
    expect(octal(fs.statSync(path.join(repo, "made.txt")).mode & 0o777)).toBe(octal(0o666 & ~operatorUmask))
  })

  it("an operators' group this machine does not know is refused, named", async () => {
    const bad = makeWorkspace({ operatorsGroup: "no-such-group-here" })
    const out = await bad.warden("ps")
    expect(out.status).toBe(2)
    expect(out.stderr).toContain('operatorsGroup "no-such-group-here" is not a group on this machine')
    bad.cleanup()
  })
})
