import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")

const sourceFiles = (dir: string): string[] =>
  fs
    .readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => path.join(dir, file))

const importsOf = (file: string): string[] =>
  [...fs.readFileSync(path.join(root, file), "utf8").matchAll(/^(?:import|export)\b[^"']*?from\s+["']([^"']+)["']/gms)].map((m) => m[1]!)

describe("the agent session lifecycle's files", () => {
  it("src imports the session's domain types from agentSession.types.ts; only the seam runs the machine and only the visualizer's catalogue draws it", () => {
    const machineImporters = sourceFiles("src").filter((file) => importsOf(file).some((spec) => spec.endsWith("/agentSession.machine.js")))
    expect(machineImporters).toEqual([path.join("src", "sessions", "sessionActors.ts"), path.join("src", "viz", "machineCatalog.ts")])
    const typeImporters = sourceFiles("src").filter((file) => importsOf(file).some((spec) => spec.endsWith("/agentSession.types.js")))
    expect(typeImporters.length).toBeGreaterThanOrEqual(10)
  })

  it("the machine, its types and its reducers import only xstate and their siblings in machines/", () => {
    for (const file of sourceFiles("machines")) {
      for (const spec of importsOf(file)) {
        expect(spec === "xstate" || /^\.\/[\w.]+\.js$/.test(spec), `${file} imports ${spec}`).toBe(true)
      }
    }
  })
})
