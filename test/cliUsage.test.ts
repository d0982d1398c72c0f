import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cliEntry } from "./support/workspace.js"

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), "warden-usage-"))
const warden = (...args: string[]) =>
  spawnSync(process.execPath, [cliEntry, ...(args[0] === "--help" ? [] : ["--workspace", workspace]), ...args], { encoding: "utf8" })

/** A mistyped command line says what is wrong and how the command is used, and exits 2, as Unix commands do. */
describe("the CLI's usage errors and help", () => {
  it.each([
    [["dispatch"], /^warden: Expected to find option: '--repo'; Expected to find option: '--agent'\nusage: warden dispatch --repo text --agent text .*<bead>\n/],
    [["show"], /^warden: Missing argument <bead>\nusage: warden show \[--json\] <bead>\n/],
    [["ps", "--jsn"], /^warden: Received unknown argument: '--jsn'\nusage: warden ps \[--json\]\n/],
    [["services"], /^warden: unknown command "services"\nusage: warden .*commands: daemon, dispatch/],
    [["services", "--help"], /^warden: unknown command "services"/]
  ])("warden %j: one line of what is wrong, the usage, exit 2", (args, expected) => {
    const out = warden(...args)
    expect(out.status, out.stderr).toBe(2)
    expect(out.stderr).toMatch(expected)
    expect(out.stderr).not.toMatch(/_tag|ERROR \(#|\x1b\[/)
    expect(out.stdout).toBe("")
  })

  it("help off a terminal has no colours and no filler; its usage lines start with warden; options that may be left out are in brackets", () => {
    for (const args of [["--help"], ["send", "--help"], ["doctor", "--help"]]) {
      const out = warden(...args)
      expect(out.status).toBe(0)
      expect(out.stdout).not.toMatch(/\x1b\[/)
      expect(out.stdout).not.toMatch(/A user-defined piece of text|A true or false value/)
      for (const line of out.stdout.split("\n").filter((l) => l.startsWith("$ "))) expect(line).toMatch(/^\$ warden /)
    }
    expect(warden("send", "--help").stdout).toContain("$ warden send [--no-enter] [--key text...] <bead> [<text>]")
    expect(warden("--help").stdout).toMatch(/^ {2}warden doctor \[--repo text\] \[--profile text\.\.\.\] \[--json\]$/m)
  })
})
