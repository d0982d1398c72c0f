import * as fs from "node:fs"
import { describe, expect, it } from "vitest"

/** The start-up figures live in `npm run bench`; what keeps them low is checked here. */
describe("the CLI's start-up", () => {
  const cli = (name: string) => fs.readFileSync(new URL(`../dist/src/cli/${name}`, import.meta.url), "utf8")

  it("`warden signal`, which agents call on every hook and turn, loads no Effect module", () => {
    const bundle = cli("signalMain.bundle.mjs")
    expect(bundle).toContain("var runSignal = ")
    expect(bundle).not.toMatch(/node_modules\/(effect|@effect)\//)
    // The entry point itself imports nothing but the command-line split before choosing.
    expect([...cli("main.js").matchAll(/^import .* from "(.*)";$/gm)].map((m) => m[1])).toEqual(["./argv.js"])
  })

  it("the full CLI is one bundled file", () => {
    expect(cli("app.bundle.mjs")).toMatch(/node_modules\/effect\//)
    expect(cli("main.js")).toContain('"./app.bundle.mjs"')
  })
})
