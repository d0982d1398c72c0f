import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, exited, git, makeWorkspace } from "./support/workspace.js"

/** What an operator does while the daemon is down, and what the next start makes of it. */
const ws = makeWorkspace()
const daemons: ChildProcess[] = []
const start = async () => {
  const started = await ws.startDaemon()
  daemons.push(started.child)
  return started
}
const kill9 = async (child: ChildProcess) => {
  child.kill("SIGKILL")
  await exited(child)
}
afterAll(() => {
  for (const child of daemons) child.kill("SIGKILL")
  ws.cleanup()
})

describe("while the daemon is down", () => {
  it("a cancel is final: the next start does not undo it, retry it or run its work", async () => {
    const repo = ws.makeRepo("repo-downcancel")
    let d = await start()
    const gate = path.join(ws.dir, "downcancel-go")
    const out = await ws.warden(
      "dispatch", "bd-downcancel", "--repo", repo, "--agent", "shell", "--prompt", "x", "--max-retries", "3",
      "--command", `echo working; while [ ! -f ${gate} ]; do sleep 0.1; done; echo late > late.txt; git add late.txt; git -c user.name=a -c user.email=a@b commit -qm late`
    )
    expect(out.status, out.stderr).toBe(0)
    await eventually(() => ws.readRun("bd-downcancel")?.lifecycle_state === "running.working", 20_000, "running")
    await kill9(d.child)
    const cancel = await ws.warden("cancel", "bd-downcancel")
    expect(cancel.status, cancel.stderr).toBe(0)
    expect(ws.readRun("bd-downcancel")).toMatchObject({ outcome: "cancelled", lifecycle_state: "cancelled" })
    fs.writeFileSync(gate, "")
    d = await start()
    // Give a wrongly restored session every chance to run: the liveness check and a retry's backoff.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const run = ws.readRun("bd-downcancel")
    expect(run).toMatchObject({ outcome: "cancelled", lifecycle_state: "cancelled", attempt: 1, will_retry: false })
    expect(fs.existsSync(path.join(repo, "late.txt"))).toBe(false)
    expect(git(repo, "rev-list", "--count", "HEAD").stdout.trim()).toBe("1")
    expect(fs.existsSync(path.join(ws.workspace, "state", "snapshots", "bd-downcancel.json"))).toBe(false)
    expect(ws.tmux("has-session", "-t", "=agent-bd-downcancel").status).not.toBe(0)
    await kill9(d.child)
  })

  it("an agent that exits is recorded as finished when it exited, not when the restart noticed", async () => {
    const repo = ws.makeRepo("repo-downexit")
    let d = await start()
    const gate = path.join(ws.dir, "downexit-go")
    const out = await ws.warden(
      "dispatch", "bd-downexit", "--repo", repo, "--agent", "shell", "--prompt", "x",
      "--command", `while [ ! -f ${gate} ]; do sleep 0.1; done; echo done > done.txt`
    )
    expect(out.status, out.stderr).toBe(0)
    await eventually(() => ws.readRun("bd-downexit")?.lifecycle_state === "running.working", 20_000, "running")
    await kill9(d.child)
    fs.writeFileSync(gate, "")
    const exitFile = await eventually(
      () => fs.readdirSync(path.join(ws.workspace, "state", "watch")).find((name) => name.startsWith("bd-downexit.") && name.endsWith(".exit.json")),
      10_000,
      "the exit file"
    )
    const exitedAt = Date.parse(JSON.parse(fs.readFileSync(path.join(ws.workspace, "state", "watch", exitFile), "utf8")).at)
    // The daemon stays down a while after the agent exited.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const restartedAt = Date.now()
    d = await start()
    await eventually(() => ws.readRun("bd-downexit")?.lifecycle_state === "done", 20_000, "done after the restart")
    const run = ws.readRun("bd-downexit")
    const finished = Date.parse(run.finished_at_precise)
    expect(Math.abs(finished - exitedAt)).toBeLessThan(5)
    expect(finished).toBeLessThan(restartedAt - 2_000)
    expect(run.finished_at).toBe(new Date(Math.floor(exitedAt / 1000) * 1000).toISOString().replace(".000Z", "Z"))
    await kill9(d.child)
  })
})

describe("following a bead the daemon runs", () => {
  it("Ctrl-C on dispatch --wait stops following, says so and how to cancel; the bead runs on", async () => {
    const repo = ws.makeRepo("repo-follow")
    const d = await start()
    const child = ws.start("dispatch", "bd-follow", "--repo", repo, "--agent", "shell", "--prompt", "x", "--command", "echo busy; sleep 600", "--wait")
    await eventually(() => ws.readRun("bd-follow")?.lifecycle_state === "running.working", 20_000, "running")
    await eventually(() => /running\.working/.test(child.output()), 10_000, "the CLI following the state")
    child.kill("SIGINT")
    expect(await exited(child)).toBe(130)
    expect(child.output()).toMatch(/stopped following bd-follow; it goes on under the daemon \(pid \d+\)\. .*warden cancel bd-follow/)
    expect(ws.readRun("bd-follow").lifecycle_state).toBe("running.working")
    expect((await ws.warden("cancel", "bd-follow")).status).toBe(0)
    await eventually(() => ws.readRun("bd-follow")?.lifecycle_state === "cancelled", 20_000, "cancelled")
    await kill9(d.child)
  })
})

describe("warden tail", () => {
  it("names the daemon's reason for a refusal, ends quietly when its reader stops, and says so when the daemon stops", async () => {
    const d = await start()
    const refused = await ws.warden("tail", "--topics", "bogus")
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain("the daemon refused the feed: unknown topics: bogus")

    // `warden tail | head -1`: the reader goes away, the next event ends tail without a stack trace.
    const headLike = ws.start("tail", "--json")
    await eventually(() => headLike.output().includes('"type":"hello"'), 10_000, "tail connected")
    headLike.stdout!.destroy()
    expect((await ws.warden("drain")).status).toBe(0)
    expect((await ws.warden("drain", "--off")).status).toBe(0)
    expect(await exited(headLike)).toBe(0)
    expect(headLike.output()).not.toMatch(/EPIPE|Error/)

    const follower = ws.start("tail", "--json")
    await eventually(() => follower.output().includes('"type":"hello"'), 10_000, "tail connected")
    d.child.kill("SIGTERM")
    expect(await exited(follower)).toBe(1)
    expect(follower.output()).toMatch(/warden: the daemon stopped \(the feed closed with 1001\); follow it again with `warden tail --since \d+`/)
    await exited(d.child)
  })
})

