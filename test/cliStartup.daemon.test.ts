import * as fs from "node:fs"
import { describe, expect, it } from "vitest"

/** The HTTP server's code (issue 14, item 6) costs every command its parse time unless only `warden daemon` loads it. */
describe("the daemon's server code at start-up", () => {
  const cli = (name: string) => fs.readFileSync(new URL(`../dist/src/cli/${name}`, import.meta.url), "utf8")
  const SERVER_CODE = /@effect\/platform\/dist\/esm\/HttpApiBuilder\.js|@effect\/platform-node\/dist\/esm\/internal\/httpServer\.js/

  it("is in the daemon's bundle only: `warden --version`, `ps` and `show` load a bundle without it", () => {
    expect(cli("app.bundle.mjs")).not.toMatch(SERVER_CODE)
    expect(cli("daemon.bundle.mjs")).toMatch(SERVER_CODE)
    // The entry point sends `warden daemon` alone to that bundle.
    expect(cli("main.js")).toMatch(/rest\[0\] === "daemon" \? "\.\/daemon\.bundle\.mjs" : "\.\/app\.bundle\.mjs"/)
  })
})
