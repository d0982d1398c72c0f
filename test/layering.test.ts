import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

/**
 * The layering of the code, lowest first (the README's Architecture section says what each folder
 * owns). A module may import from its own layer and the layers below it, never
 * from a layer above. Folders of one layer may import each other.
 */
const LAYERS: ReadonlyArray<ReadonlyArray<string>> = [
  ["machines"],
  ["src/workspace", "src/config", "src/system", "src/templates", "src/terminals", "src/processes", "src/git", "src/records", "src/agents"],
  ["src/sessions", "src/services", "src/argus"],
  ["src/runtime"],
  ["src/daemon"],
  // The statechart visualizer: machines' definitions drawn, a session's history replayed (the MachineEvent type is the daemon's).
  ["src/viz"],
  ["src/server"],
  ["src/cli"],
  // The dashboard: its static files, and the page's own code (run in the browser, bundled by the build).
  ["src/demo", "src/bench", "src/dashboard"]
]

/** What `machines/` may import besides its own files: nothing of `src/`, Effect or Node. */
const MACHINE_PACKAGES = ["xstate"]

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const layerOf = (folder: string): number => LAYERS.findIndex((layer) => layer.includes(folder))

/** `src/cli/app.ts` -> `src/cli`; `machines/x.ts` -> `machines`; anything else (test/, a package) -> null. */
const folderOf = (file: string): string | null => {
  const parts = path.relative(root, file).split(path.sep)
  if (parts[0] === "machines") return "machines"
  if (parts[0] === "src" && parts.length > 2) return `src/${parts[1]}`
  if (parts[0] === "src") return "src"
  return null
}

const sourceFiles = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith(".ts") ? [full] : []
  })

/** Every module specifier a source names: static imports, `import type`, `export ... from` and `import()`. */
const specifiers = (source: string): string[] =>
  ts.preProcessFile(source, true, true).importedFiles.map((imported) => imported.fileName)

/** A sentence for each import that breaks the rule, naming the file, the specifier and why. */
const layeringProblems = (files: ReadonlyArray<{ readonly file: string; readonly source: string }>): string[] => {
  const problems: string[] = []
  for (const { file, source } of files) {
    const from = folderOf(file)
    const name = path.relative(root, file)
    if (from === null || layerOf(from) === -1) {
      problems.push(`${name}: its folder ${from ?? "(none)"} is in no layer: add it to LAYERS here and to the README's Architecture section`)
      continue
    }
    for (const specifier of specifiers(source)) {
      const relative = specifier.startsWith(".")
      if (from === "machines") {
        const sibling = relative && folderOf(path.resolve(path.dirname(file), specifier)) === "machines"
        const allowed = MACHINE_PACKAGES.some((p) => specifier === p || specifier.startsWith(`${p}/`))
        if (!sibling && !allowed) problems.push(`${name} imports "${specifier}": machines/ may import only ${MACHINE_PACKAGES.join(", ")} and each other`)
        continue
      }
      if (!relative) continue
      const to = folderOf(path.resolve(path.dirname(file), specifier))
      if (to === null || layerOf(to) === -1) {
        problems.push(`${name} imports "${specifier}", outside every layer`)
      } else if (layerOf(to) > layerOf(from)) {
        problems.push(`${name} imports "${specifier}": ${from} (layer ${layerOf(from)}) must not import from ${to} (layer ${layerOf(to)}), which is above it`)
      }
    }
  }
  return problems
}

describe("the layering", () => {
  it("no module under src/ or machines/ imports from a layer above its own", () => {
    const files = [...sourceFiles(path.join(root, "src")), ...sourceFiles(path.join(root, "machines"))].map((file) => ({
      file,
      source: fs.readFileSync(file, "utf8")
    }))
    expect(files.length).toBeGreaterThan(50)
    expect(layeringProblems(files)).toEqual([])
  })

  it("every folder under src/ has its layer", () => {
    const folders = fs
      .readdirSync(path.join(root, "src"), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `src/${entry.name}`)
    expect(folders.filter((folder) => layerOf(folder) === -1)).toEqual([])
  })

  it("names an upward import, a machine's import of src/ or Node, and a folder outside the layering", () => {
    const problems = layeringProblems([
      {
        file: path.join(root, "src", "records", "upward.ts"),
        source: 'import type { DispatchSpec } from "../sessions/dispatchSpec.js"\nexport { liveLayer } from "../runtime/liveLayer.js"\n'
      },
      {
        file: path.join(root, "machines", "impure.machine.ts"),
        source: 'import { setup } from "xstate"\nimport { assign } from "./agentSession.reducers.js"\nimport * as fs from "node:fs"\nimport { Effect } from "effect"\nimport type { X } from "../src/workspace/paths.js"\n'
      },
      { file: path.join(root, "src", "nowhere", "stray.ts"), source: "" },
      { file: path.join(root, "src", "cli", "fine.ts"), source: 'import { Daemon } from "../daemon/daemon.js"\nimport { Schema } from "effect"\n' }
    ])
    expect(problems).toEqual([
      expect.stringMatching(/upward\.ts imports "\.\.\/sessions\/dispatchSpec\.js": src\/records \(layer 1\) must not import from src\/sessions \(layer 2\)/),
      expect.stringMatching(/upward\.ts imports "\.\.\/runtime\/liveLayer\.js": src\/records .* src\/runtime/),
      expect.stringMatching(/impure\.machine\.ts imports "node:fs": machines\/ may import only xstate/),
      expect.stringMatching(/impure\.machine\.ts imports "effect"/),
      expect.stringMatching(/impure\.machine\.ts imports "\.\.\/src\/workspace\/paths\.js"/),
      expect.stringMatching(/src\/nowhere\/stray\.ts: its folder src\/nowhere is in no layer/)
    ])
  })
})
