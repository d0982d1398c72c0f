import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfigSync } from "../src/config/loadConfig.js"
import { resolveProfile } from "../src/config/profiles.js"
import { schemaFiles, schemaText } from "../src/config/writeSchemas.js"

const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), "warden-config-"))
const writeConfig = (doc: unknown) => {
  const file = path.join(temp(), "warden.json")
  fs.writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc))
  return file
}
const issuesOf = (file: string) => {
  const loaded = loadConfigSync({ config: file, env: {} })
  if (Either.isRight(loaded)) throw new Error("expected the config to be refused")
  return loaded.left
}

describe("configuration", () => {
  it("the built-in config decodes with every default filled in", () => {
    const loaded = loadConfigSync({ workspace: temp(), env: {} })
    expect(Either.isRight(loaded)).toBe(true)
    const config = Either.getOrThrow(loaded)
    expect(config.tmuxSocket).toBe("/tmp/openclaw-coding-agents.sock")
    expect(Object.keys(config.profiles).sort()).toEqual(["claude", "claude-tui", "codex", "codex-tui", "custom", "demo", "demo-tui"])
    expect(config.verification.requireChanges).toBe(true)
    const demo = resolveProfile(config, "demo")
    expect("error" in demo).toBe(false)
    if (!("error" in demo)) expect(demo.policy).toMatchObject({ timeoutMs: 60_000, stallMs: 20_000, retry: { maxAttempts: 2, backoffInitialMs: 1_000 } })
  })

  it("an operator's file overrides the defaults and adds profiles by name", () => {
    const file = writeConfig({
      allowedRoots: ["/srv/repos"],
      profiles: { mine: { command: "my-agent", prompt: { mode: "stdin" }, completion: { sources: ["exit"] } } }
    })
    const config = Either.getOrThrow(loadConfigSync({ config: file, env: {} }))
    expect(config.allowedRoots).toEqual(["/srv/repos"])
    expect(Object.keys(config.profiles).sort()).toEqual(["claude", "claude-tui", "codex", "codex-tui", "custom", "demo", "demo-tui", "mine"])
    expect(config.file).toBe(file)
  })

  it("a profile named like a built-in one changes only the fields it gives", () => {
    const file = writeConfig({ profiles: { custom: { completion: { waitingPatterns: ["Continue\\? \\[y/N\\]"] }, timeoutMs: 5_000 } } })
    const loaded = loadConfigSync({ config: file, env: {} })
    expect(Either.isRight(loaded), Either.isLeft(loaded) ? loaded.left.message : "").toBe(true)
    const custom = Either.getOrThrow(loaded).profiles.custom!
    expect(custom.command).toBe("sh")
    expect(custom.timeoutMs).toBe(5_000)
    expect(custom.completion.waitingPatterns).toEqual(["Continue\\? \\[y/N\\]"])
    // The rest of `completion` is the built-in profile's.
    expect(custom.completion.sources).toEqual(["signal", "status-file", "marker", "exit"])
    expect(custom.completion.doneMarker).toBe("^WARDEN_DONE$")
  })

  it("an invalid file is refused with the path and field of each problem", () => {
    const error = issuesOf(
      writeConfig({
        tmuxSockett: "/tmp/x.sock",
        minFreeDiskMb: "lots",
        profiles: {
          broken: { command: "", prompt: { mode: "telepathy" }, completion: { sources: ["exit"], idlePrompt: "([" } }
        }
      })
    )
    const paths = error.issues.map((issue) => issue.path)
    expect(paths).toEqual(
      expect.arrayContaining(["tmuxSockett", "minFreeDiskMb", "profiles.broken.command", "profiles.broken.prompt.mode", "profiles.broken.completion.idlePrompt"])
    )
    expect(error.message).toContain(error.issues[0]!.path)
    expect(error.issues.find((i) => i.path === "profiles.broken.completion.idlePrompt")?.message).toMatch(/regular expression/)
  })

  it("each bad field is named once, a union's choices joined, as the README shows", () => {
    const error = issuesOf(writeConfig({ minFreeDiskMb: "lots", profiles: { x: { command: "a", prompt: { mode: "telepathy" }, completion: { sources: ["exit"] } } } }))
    expect(error.issues).toEqual([
      { path: "minFreeDiskMb", message: 'Expected number, actual "lots"' },
      { path: "profiles.x.prompt.mode", message: 'Expected "argument" | "stdin" | "file" | "keys", actual "telepathy"' }
    ])
    const readme = fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    expect(readme).toContain(`at profiles.x.prompt.mode: ${error.issues[1]!.message}`)
  })

  it("a Stately inspector URL a websocket client cannot open is refused at load, naming the field", () => {
    for (const url of ["ws://localhost:99999", "ws://[bad", "ws://:8080", "http://localhost:8080", "localhost:8080"]) {
      expect(issuesOf(writeConfig({ statelyInspector: { url } })).issues, url).toEqual([
        { path: "statelyInspector.url", message: "a ws:// or wss:// URL with a host and a valid port, such as ws://localhost:8080" }
      ])
    }
    expect(Either.isRight(loadConfigSync({ config: writeConfig({ statelyInspector: { url: "ws://127.0.0.1:8080" } }), env: {} }))).toBe(true)
  })

  it("a file that is not JSON, or missing, is refused naming the file", () => {
    const notJson = writeConfig("{ nope")
    expect(issuesOf(notJson).message).toContain(notJson)
    expect(issuesOf(notJson).issues[0]!.message).toMatch(/not JSON/)
    expect(issuesOf("/nonexistent/warden.json").message).toBe("cannot read the config /nonexistent/warden.json: no such file")
  })

  it("WARDEN_ALLOW_ROOT=1 allows root like the config setting", () => {
    expect(Either.getOrThrow(loadConfigSync({ workspace: temp(), env: { WARDEN_ALLOW_ROOT: "1" } })).allowRootResolved).toBe(true)
    expect(Either.getOrThrow(loadConfigSync({ workspace: temp(), env: {} })).allowRootResolved).toBe(false)
  })

  it("the CLI refuses to start on an invalid config, naming the field, with a non-zero exit", () => {
    const file = writeConfig({ profiles: { x: { command: "a", prompt: { mode: "keys" }, completion: { sources: ["psychic"] } } } })
    const result = spawnSync(process.execPath, ["dist/src/cli/main.js", "--config", file, "--workspace", temp(), "ps"], { encoding: "utf8" })
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(file)
    expect(result.stderr).toContain("profiles.x.completion.sources.0")
  })

  it("doctor fails only for profiles in use: those named, the config file's, or the workspace's runs", () => {
    const doctor = (file: string | null, ...args: string[]) =>
      spawnSync(process.execPath, ["dist/src/cli/main.js", ...(file === null ? [] : ["--config", file]), "--workspace", temp(), "doctor", ...args], {
        encoding: "utf8",
        // Neither claude nor codex is on this PATH.
        env: { PATH: "/usr/bin:/bin", HOME: temp() }
      })
    const plain = doctor(null, "--json")
    expect(plain.status, plain.stderr).toBe(0)
    const report = JSON.parse(plain.stdout) as { ok: boolean; profiles: Array<{ profile: string; inUse: boolean; checks: Array<{ ok: boolean; advisory?: boolean }> }> }
    expect(report.ok).toBe(true)
    expect(report.profiles.find((p) => p.profile === "claude")).toMatchObject({ inUse: false, checks: [{ ok: false, advisory: true }] })
    const named = doctor(null, "--profile", "claude")
    expect(named.status).toBe(1)
    expect(named.stdout).toMatch(/claude\s+yes\s+agent-command\s+FAILED/)
    expect(doctor(null, "--profile", "nope").stderr).toMatch(/unknown profile "nope"/)
    const mine = writeConfig({ profiles: { mine: { command: "not-installed-agent", prompt: { mode: "stdin" }, completion: { sources: ["exit"] } } } })
    expect(doctor(mine).status).toBe(1)
  })

  it("the JSON Schemas in config/ are the ones the code generates", () => {
    for (const [name, doc] of Object.entries(schemaFiles())) {
      expect(fs.readFileSync(new URL(`../config/${name}`, import.meta.url), "utf8"), `config/${name} is stale: run npm run schemas`).toBe(schemaText(doc))
    }
  })
})
