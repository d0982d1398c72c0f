import * as fs from "node:fs"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfigSync } from "../src/config/loadConfig.js"
import { compileRules, readScreen, screenShows } from "../src/sessions/screenRules.js"

/**
 * The shipped profiles' screen patterns against screens captured from the
 * real CLIs (test/fixtures/, see the endpoint tests that capture them).
 */
const config = Either.getOrThrow(loadConfigSync({ env: {}, workspace: "/nonexistent-workspace" }))
const fixture = (name: string): string[] => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8").split("\n")

const profileRules = (name: string) => {
  const profile = config.profiles[name]!
  return {
    rules: compileRules(profile.completion.waitingPatterns, profile.completion.idlePrompt),
    ready: new RegExp(profile.prompt.readyPattern ?? "$^")
  }
}

describe("claude-tui reads Claude Code's screens", () => {
  const { rules, ready } = profileRules("claude-tui")

  it.each([
    ["claude/trust-dialog.txt", /Is this a project you created or one you trust\?/],
    ["claude/api-key-dialog.txt", /Do you want to use this API key\?/],
    ["claude/bypass-dialog.txt", /Bypass Permissions mode/],
    ["claude/permission-prompt.txt", /Do you want to create hello\.txt\?/],
    ["claude/permission-prompt-bash.txt", /Do you want to proceed\?/]
  ])("%s is a dialog waiting for an answer, named by its text", (file, text) => {
    const reading = readScreen(fixture(file), rules)
    expect(reading.kind).toBe("dialog")
    if (reading.kind === "dialog") expect(reading.text).toMatch(text)
    // A dialog is not the input box: the prompt is never typed into it.
    expect(screenShows(fixture(file), ready)).toBe(false)
  })

  it.each(["claude/ready.txt", "claude/ready-default-mode.txt", "claude/turn-done.txt", "claude/working.txt"])(
    "%s is not a dialog",
    (file) => {
      expect(readScreen(fixture(file), rules).kind).not.toBe("dialog")
    }
  )

  it("the input box says the TUI is ready for a prompt", () => {
    expect(screenShows(fixture("claude/ready.txt"), ready)).toBe(true)
    expect(screenShows(fixture("claude/ready-default-mode.txt"), ready)).toBe(true)
  })
})

describe("codex-tui reads Codex's screens", () => {
  const { rules, ready } = profileRules("codex-tui")

  it.each([
    ["codex/trust-dialog.txt", /Trust this folder\?/],
    ["codex/approval-prompt.txt", /Would you like to run the following command\?/],
    ["codex/model-migration.txt", /Try new model/]
  ])("%s is a dialog waiting for an answer, named by its text", (file, text) => {
    const reading = readScreen(fixture(file), rules)
    expect(reading.kind).toBe("dialog")
    if (reading.kind === "dialog") expect(reading.text).toMatch(text)
    expect(screenShows(fixture(file), ready)).toBe(false)
  })

  it.each(["codex/ready.txt", "codex/turn-done.txt", "codex/working.txt"])("%s is not a dialog", (file) => {
    expect(readScreen(fixture(file), rules).kind).not.toBe("dialog")
  })

  it("the empty prompt line says the TUI is ready for a prompt", () => {
    expect(screenShows(fixture("codex/ready.txt"), ready)).toBe(true)
  })
})
