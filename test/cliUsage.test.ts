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
    [["ps", "--jsn"], /^warden: unknown option --jsn \(did you mean --json\?\)\nusage: warden ps \[--json\]\n/],
    [["dashboard", "--jsno"], /^warden: unknown option --jsno \(did you mean --json\?\)\nusage: warden dashboard \[--json\]\n/],
    [["viz", "agentSession", "--format", "png"], /^warden: --format must be one of svg, json, mermaid, not "png"\nusage: warden viz /],
    [["viz", "agentSession", "--format=png"], /^warden: --format must be one of svg, json, mermaid, not "png"\n/],
    [["viz", "agentSession", "--at", "abc"], /^warden: --at must be an integer, not "abc"\n/],
    [["dispatch", "bd-x", "--repo", ".", "--agent", "custom", "--priority", "high"], /^warden: --priority must be an integer, not "high"\n/],
    [["frobnicate"], /^warden: unknown command "frobnicate"\nusage: warden .*commands: daemon, dispatch/],
    [["frobnicate", "--help"], /^warden: unknown command "frobnicate"/],
    [["dispach"], /^warden: unknown command "dispach" \(did you mean dispatch\?\)/],
    [["daemon", "--port", "99999"], /^warden: --port 99999: a port is 0 to 65535/],
    [["daemon", "--quota", "nope=2"], /^warden: --quota nope=2: no profile "nope"; configured: claude, /],
    [["daemon", "--quota", "custom"], /^warden: --quota custom: write PROFILE=N/],
    [["daemon", "--allow-origin", "notaurl"], /^warden: --allow-origin notaurl: an origin is scheme:\/\/host\[:port\]/],
    [["daemon", "--feed-window", "0"], /^warden: --feed-window 0: at least 1/],
    [["daemon", "--concurrency", "0"], /^warden: --concurrency 0: at least 1/],
    [["dispatch", "bd-x", "--repo", ".", "--agent", "cusotm", "--prompt", "x"], /^warden: unknown agent profile "cusotm" \(did you mean custom\?\)/],
    [["dispatch", "bd-x", "--repo", ".", "--agent", "custom", "--command", "true", "--priority", "7"], /^warden: --priority 7: 0 \(first\) to 4/],
    [["dispatch", "BAD/ID", "--repo", ".", "--agent", "custom", "--command", "true"], /^warden: invalid bead id "BAD\/ID"/],
    [["send", "bd-x"], /^warden: nothing to send: give TEXT, or --key NAME \(--key Enter presses Enter alone\)/]
  ])("warden %j: one line of what is wrong, the usage, exit 2", (args, expected) => {
    const out = warden(...args)
    expect(out.status, out.stderr).toBe(2)
    expect(out.stderr).toMatch(expected)
    expect(out.stderr).not.toMatch(/_tag|ERROR \(#|\x1b\[/)
    expect(out.stdout).toBe("")
  })

  it("global options need their value; a config that cannot be read says so, not that it is invalid", () => {
    const bare = spawnSync(process.execPath, [cliEntry, "--workspace"], { encoding: "utf8" })
    expect(bare.status).toBe(2)
    expect(bare.stderr).toBe("warden: --workspace needs a directory after it\n")
    const missing = warden("--config", "/nonexistent/warden.json", "ps")
    expect(missing.status).toBe(2)
    expect(missing.stderr).toBe("warden: cannot read the config /nonexistent/warden.json: no such file\n")
  })

  it("a bead this workspace never saw is named as such by send and cancel (exit 1)", () => {
    for (const args of [["send", "bd-never", "y"], ["cancel", "bd-never"]]) {
      const out = warden(...args)
      expect(out.status).toBe(1)
      expect(out.stderr).toBe(`warden: no bead bd-never in the workspace ${workspace}\n`)
    }
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
