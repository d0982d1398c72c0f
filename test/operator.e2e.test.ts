import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { eventually, makeWorkspace, useDaemon } from "./support/workspace.js"

/** What an operator meets at the daemon's door: the rules of a dispatch, through the API and the CLI. */
const ws = makeWorkspace()
const daemon = useDaemon(ws)
const api = daemon.api

describe("dispatch rules", () => {
  it("a profile that runs a command needs one (422 naming it, nothing created), and then no prompt", async () => {
    const repo = ws.makeRepo("repo-custom")
    const refused = await api("POST", "/v1/dispatch", { bead: "bd-nocmd", repo, agent: "custom", prompt: "do it" })
    expect(refused.status).toBe(422)
    expect(refused.json.error).toMatch(/profile "custom" runs a command: give --command/)
    expect(fs.existsSync(path.join(ws.workspace, "state", "snapshots", "bd-nocmd.json"))).toBe(false)
    expect((await api("GET", "/v1/queue")).json.queue).toEqual([])

    const cli = await ws.warden("dispatch", "bd-nocmd", "--repo", repo, "--agent", "custom")
    expect(cli.status).not.toBe(0)
    expect(cli.stderr).toMatch(/runs a command: give --command CMD/)

    const wrong = await ws.warden("dispatch", "bd-wrongcmd", "--repo", repo, "--agent", "demo", "--prompt", "x", "--command", "echo hi")
    expect(wrong.status).not.toBe(0)
    expect(wrong.stderr).toMatch(/profile "demo" does not run a command/)

    const ok = await ws.warden("dispatch", "bd-cmdonly", "--repo", repo, "--agent", "custom", "--command", "echo hi > hi.txt && git add hi.txt && git -c user.name=t -c user.email=t@t commit -qm hi")
    expect(ok.status, ok.stderr).toBe(0)
    await eventually(() => ws.readRun("bd-cmdonly")?.lifecycle_state === "done" && ws.readRun("bd-cmdonly"), 30_000, "bd-cmdonly done")
    expect(ws.readRun("bd-cmdonly")).toMatchObject({ status: "done" })
  })

  it("input to a bead that is not running is 409, as cancel is; to an unknown bead 404", async () => {
    const repo = ws.makeRepo("repo-input")
    const done = await ws.warden("dispatch", "bd-inputdone", "--repo", repo, "--agent", "custom", "--command", "echo x > x.txt", "--wait")
    expect(done.status, done.stderr).toBe(0)
    const input = await api("POST", "/v1/sessions/bd-inputdone/input", { text: "hello" })
    expect(input.status).toBe(409)
    expect(input.json.error).toMatch(/bd-inputdone is not running \(it ended done\)/)
    expect((await api("POST", "/v1/sessions/bd-inputdone/cancel", {})).status).toBe(409)
    const unknown = await api("POST", "/v1/sessions/bd-nosuch/input", { text: "hello" })
    expect(unknown.status).toBe(404)
    // attach to a finished bead says why there is nothing to attach to, and never offers Ctrl-C first.
    const attach = await ws.warden("attach", "bd-inputdone")
    expect(attach.status).toBe(1)
    expect(attach.stderr).toMatch(/bd-inputdone has no running session: nothing to attach to/)
    expect(attach.stderr).not.toContain("Ctrl-C")
  })

  it("a bad field is named once in a 422, with what was expected", async () => {
    const repo = ws.makeRepo("repo-priority")
    const answer = await api("POST", "/v1/dispatch", { bead: "bd-prio", repo, agent: "custom", command: "true", priority: 7 })
    expect(answer.status).toBe(422)
    expect(answer.json.error).toBe("priority: Expected a number between 0 and 4, actual 7")
  })
})

describe("verification credits a bead with its own work only", () => {
  it("what another bead left in a shared repo, committed or not, is not this bead's; preflight warns of a live bead in the same repo", async () => {
    const repo = ws.makeRepo("repo-shared")
    const commit = "git -c user.name=b -c user.email=b@b commit -qm"
    const other = await ws.warden("dispatch", "bd-other", "--repo", repo, "--agent", "custom", "--command", `echo b > b.txt && git add b.txt && ${commit} other-work && echo stray > stray.txt`, "--wait")
    expect(other.status, other.stderr).toBe(0)
    expect(ws.readRun("bd-other").verification.new_commits).toEqual([expect.stringMatching(/other-work$/)])

    const idle = await ws.warden("dispatch", "bd-idle", "--repo", repo, "--agent", "custom", "--command", "echo I did nothing", "--wait")
    expect(idle.status).toBe(1)
    const run = ws.readRun("bd-idle")
    expect(run).toMatchObject({ outcome: "failed", failure_reason: "verification-failed" })
    expect(run.verification.new_commits).toEqual([])
    const changes = run.verification.checks.find((c: { name: string }) => c.name === "changes")
    expect(changes).toMatchObject({ status: "fail" })
    expect(changes.detail).toMatch(/^nothing changed/)

    // A path that was dirty at the launch and is changed again is this bead's work.
    const again = await ws.warden("dispatch", "bd-again", "--repo", repo, "--agent", "custom", "--command", "echo more >> stray.txt", "--wait")
    expect(again.status, again.stderr).toBe(0)
    expect(ws.readRun("bd-again").verification.checks.find((c: { name: string }) => c.name === "changes").output_tail).toContain("stray.txt")

    const busy = ws.makeRepo("repo-busy")
    expect((await ws.warden("dispatch", "bd-busy", "--repo", busy, "--agent", "custom", "--command", "sleep 600")).status).toBe(0)
    await eventually(() => ws.readRun("bd-busy")?.lifecycle_state === "running.working", 20_000, "bd-busy running")
    const preflight = await ws.warden("preflight", "--bead", "bd-next", "--repo", busy, "--agent", "custom", "--command", "true", "--json")
    expect(preflight.status, preflight.stderr).toBe(0)
    const shared = JSON.parse(preflight.stdout).checks.find((c: { name: string }) => c.name === "repo-not-shared")
    expect(shared).toMatchObject({ ok: false, advisory: true })
    expect(shared.detail).toMatch(/bd-busy is live in .*repo-busy too: .*its own repo or worktree/)
    expect((await api("POST", "/v1/sessions/bd-busy/cancel", {})).status).toBe(202)
    await eventually(() => ws.readRun("bd-busy")?.lifecycle_state === "cancelled", 20_000, "bd-busy cancelled")
  })
})

describe("a daemon that cannot listen", () => {
  it("leaves nothing behind, and says whether the port is another daemon's or another program's", async () => {
    const fresh = makeWorkspace()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const out = await fresh.warden("daemon", "--port", String(port))
      expect(out.status).not.toBe(0)
      expect(out.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another program`))
      const state = path.join(fresh.workspace, "state")
      for (const file of ["api-token", "daemon.lock", "daemon.json", "warden.log", "feed.jsonl"]) expect(fs.existsSync(path.join(state, file)), file).toBe(false)
    } finally {
      blocker.close()
      fresh.cleanup()
    }
    const second = await ws.warden("daemon", "--port", new URL(daemon.base).port)
    expect(second.status).not.toBe(0)
    expect(second.stderr).toMatch(/another warden daemon \(pid \d+\) serves this workspace on port \d+/)
  })
})
