import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { exited, makeWorkspace } from "./support/workspace.js"

/** What a `kill -9` between an atomic write and its rename leaves behind, and the next start. */
describe("temporary files of killed writers", () => {
  it("a temporary file a killed process left in the state is removed when the daemon starts; a live writer's stays", async () => {
    const ws = makeWorkspace()
    try {
      const dead = spawnSync("true").pid!
      const state = path.join(ws.workspace, "state")
      const left = [path.join(state, "snapshots", `.bd-x.json.${dead}.k2j4h5.tmp`), path.join(state, "runs", `.bd-x.json.${dead}.a1b2c3.tmp`)]
      const writing = path.join(state, "snapshots", `.bd-y.json.${process.pid}.z9y8x7.tmp`)
      for (const file of [...left, writing]) {
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(file, "{")
      }
      const d = await ws.startDaemon()
      try {
        expect(left.filter((file) => fs.existsSync(file))).toEqual([])
        expect(fs.existsSync(writing)).toBe(true)
        expect(fs.readFileSync(path.join(state, "warden.log"), "utf8")).toContain("removed a temporary file a killed process left")
      } finally {
        d.child.kill("SIGTERM")
        await exited(d.child)
      }
    } finally {
      ws.cleanup()
    }
  })
})
