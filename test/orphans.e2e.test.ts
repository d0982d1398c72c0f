import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { eventually, exited, makeWorkspace, type Workspace } from "./support/workspace.js"
import { processesWithEnv } from "./support/processes.js"

/**
 * Agents never outlive their session (issue 12, item 8). The built daemon runs agents that leave
 * processes behind, one of them double-forked out of its session with `setsid`; whatever ends the
 * session (the tmux server killed, the launcher killed, a cancel), none of the attempt's processes
 * is left once the liveness interval plus the kill grace (both from the config) has passed. Both
 * ways of finding them are tried: the attempt's cgroup, and the `/proc/<pid>/environ` scan alone.
 */
const LIVENESS_MS = 500
const GRACE_MS = 500
/** Room for a loaded two-core machine on top of liveness + grace: the check runs, the records, the kill. */
const SLACK_MS = 6_000

/** Running processes whose environment holds `WARDEN_ATTEMPT=<attemptId>`, found independently of the product. */
const attemptProcesses = (attemptId: string) => processesWithEnv("WARDEN_ATTEMPT", attemptId)

/** Where cgroup v2 is mounted (this machine: /sys/fs/cgroup/unified). */
const cgroup2Mount = (): string =>
  fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((line) => line.split(" - ")[1]?.startsWith("cgroup2 "))!
    .split(" ")[4]!

/** A shell agent that starts a plain background child and a double-forked `setsid` one (its parent exits: it goes to pid 1, in a session of its own), then works on. */
const LEAVES_CHILDREN = "sleep 600 & setsid -f sh -c 'sleep 600; true'; echo started; sleep 600"

for (const cgroups of [true, false]) {
  describe(`agents never outlive their session (${cgroups ? "cgroup per attempt" : "environ scan only"})`, () => {
    let ws: Workspace
    let daemon: Awaited<ReturnType<Workspace["startDaemon"]>>

    beforeAll(async () => {
      ws = makeWorkspace({ livenessIntervalMs: LIVENESS_MS, killGraceMs: GRACE_MS, agentCgroups: cgroups })
      daemon = await ws.startDaemon("--concurrency", "4")
    })

    afterAll(async () => {
      daemon.child.kill("SIGTERM")
      await exited(daemon.child)
      ws.cleanup()
      for (const dir of cgroupDirs) expect(fs.existsSync(dir), `${dir} removed`).toBe(false)
    })

    /** Dispatches `bead` and waits until its agent and both children run; returns the attempt id. */
    const running = async (bead: string, command: string, children: number) => {
      const repo = ws.makeRepo(`repo-${bead}`)
      const out = await ws.warden("dispatch", bead, "--repo", repo, "--agent", "shell", "--command", command, "--prompt", "x")
      expect(out.status, out.stderr).toBe(0)
      const attemptId = await eventually(
        () => (ws.readRun(bead)?.lifecycle_state === "running.working" ? (ws.readRun(bead).attempt_id as string) : null),
        20_000,
        `${bead} running`
      )
      // The launcher, bash, its sleep, and the children.
      await eventually(() => attemptProcesses(attemptId).filter((p) => /sleep 600/.test(p.cmdline)).length >= children + 1, 10_000, `${bead}'s processes`)
      // With cgroups on, every one of them (the setsid child too) is in the attempt's own cgroup.
      const cgroupsOf = attemptProcesses(attemptId).map((p) => fs.readFileSync(`/proc/${p.pid}/cgroup`, "utf8").match(/^0::(.*)$/m)?.[1] ?? "")
      for (const cgroup of cgroupsOf) {
        if (cgroups) expect(cgroup.endsWith(`/warden-agents/${attemptId}`), cgroup).toBe(true)
        else expect(cgroup).not.toContain(attemptId)
      }
      if (cgroups) cgroupDirs.push(path.join(cgroup2Mount(), cgroupsOf[0]!))
      return attemptId
    }

    /** The attempts' cgroup directories: removed once their sessions ended. */
    const cgroupDirs: Array<string> = []

    const noneLeft = async (attemptIds: ReadonlyArray<string>, what: string) => {
      const left = () => attemptIds.flatMap(attemptProcesses)
      await eventually(() => left().length === 0, LIVENESS_MS + GRACE_MS + SLACK_MS, what).catch(() => {
        throw new Error(`${what}: still running:\n${left().map((p) => `  ${p.pid} ${p.cmdline}`).join("\n")}`)
      })
    }

    it("the tmux server killed with agents running: none of their processes is left after the liveness interval plus the grace", async () => {
      const plain = await running(`bd-srv-plain-${cgroups}`, "echo started; sleep 600", 0)
      const forked = await running(`bd-srv-fork-${cgroups}`, LEAVES_CHILDREN, 2)
      expect(ws.tmux("kill-server").status).toBe(0)
      await noneLeft([plain, forked], "the agents' processes gone after kill-server")
      await eventually(() => ws.readRun(`bd-srv-fork-${cgroups}`)?.status === "failed", 20_000, "the bead's run recorded as ended")
    })

    it("the launcher killed with SIGKILL (its trap never runs): the liveness check ends what it left", async () => {
      const bead = `bd-launcher-${cgroups}`
      const attemptId = await running(bead, LEAVES_CHILDREN, 2)
      const launcher = attemptProcesses(attemptId).find((p) => /launch\.sh/.test(p.cmdline))
      expect(launcher).toBeDefined()
      process.kill(launcher!.pid, "SIGKILL")
      await noneLeft([attemptId], "the agent's processes gone after its launcher was killed")
    })

    it("cancel ends the setsid child too", async () => {
      const bead = `bd-cancel-${cgroups}`
      const attemptId = await running(bead, LEAVES_CHILDREN, 2)
      const out = await ws.warden("cancel", bead)
      expect(out.status, out.stderr).toBe(0)
      await noneLeft([attemptId], "the agent's processes gone after cancel")
      await eventually(() => ws.readRun(bead)?.lifecycle_state === "cancelled", 20_000, "cancelled")
    })
  })
}
