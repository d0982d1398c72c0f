import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { cgroup2Mount, makeAgentProcesses, makeAgentProcessesTest, ownCgroup2Path, type AgentProcesses } from "../src/processes/agentProcesses.js"

/** One suite for the live process control and its test layer: they cannot drift. */
interface Subject {
  readonly service: AgentProcesses["Type"]
  /** Starts a process of the attempt, as its agent would (the live one leaves its session with setsid). */
  readonly start: (attemptId: string, cgroup: string | null) => number
}

const live = (cgroups: boolean): Subject => ({
  service: makeAgentProcesses({ killGraceMs: 300, cgroups }),
  start: (attemptId, cgroup) => {
    // Moves itself into the cgroup first, as the launcher does, then leaves its session and ignores SIGTERM.
    // setsid -w: the process that leaves its session waits for it, so no process of the attempt exits by itself.
    const script = `${cgroup === null ? "" : `echo $$ > '${cgroup}/cgroup.procs'; `}trap '' TERM; exec setsid -w sh -c "trap '' TERM; sleep 600"`
    const child = spawn("sh", ["-c", script], { env: { ...process.env, WARDEN_ATTEMPT: attemptId }, stdio: "ignore", detached: true })
    child.unref()
    return child.pid!
  }
})

const fake = (): Subject => {
  const t = makeAgentProcessesTest()
  return { service: t.service, start: (attemptId) => t.start(attemptId) }
}

const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(effect)
const until = async (check: () => Promise<boolean>, ms: number) => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const subjects: Array<[string, () => Subject]> = [
  ["test layer", fake],
  ["live, cgroup per attempt", () => live(true)],
  ["live, environ scan only", () => live(false)]
]

for (const [name, make] of subjects) {
  describe(`AgentProcesses contract: ${name}`, () => {
    it("finds the attempt's processes, and reap ends them (SIGTERM ignored: SIGKILL after the grace); another attempt's are left alone", async () => {
      const s = make()
      const mine = `att-${randomBytes(8).toString("hex")}`
      const other = `att-${randomBytes(8).toString("hex")}`
      const cgroup = await run(s.service.prepare(mine))
      s.start(mine, cgroup)
      s.start(other, null)
      await until(async () => (await run(s.service.find(mine))).length > 0 && (await run(s.service.find(other))).length > 0, 5_000)
      const found = await run(s.service.find(mine))
      const reaped = await run(s.service.reap(mine))
      expect(reaped).toEqual(expect.arrayContaining([...found]))
      expect(await run(s.service.find(mine))).toEqual([])
      expect((await run(s.service.find(other))).length).toBeGreaterThan(0)
      if (cgroup !== null) expect(fs.existsSync(cgroup)).toBe(false)
      await run(s.service.reap(other))
      expect(await run(s.service.find(other))).toEqual([])
      // Again, and for an attempt that never ran: nothing to do, no error.
      expect(await run(s.service.reap(mine))).toEqual([])
    })
  })
}

describe("finding cgroup v2", () => {
  it("reads the mount point from mountinfo and this process's path from /proc/self/cgroup", () => {
    const mountinfo = [
      "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
      "42 31 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
    ].join("\n")
    expect(cgroup2Mount(mountinfo)).toBe("/sys/fs/cgroup/unified")
    expect(cgroup2Mount("41 31 0:38 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw")).toBe("/sys/fs/cgroup/my dir")
    expect(cgroup2Mount(mountinfo.split("\n")[0]!)).toBeNull()
    expect(ownCgroup2Path("4:memory:/x\n0::/system.slice/warden.service\n")).toBe("/system.slice/warden.service")
    expect(ownCgroup2Path("4:memory:/x\n")).toBeNull()
  })
})
