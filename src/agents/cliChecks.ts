import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import type { PreflightCheck } from "../../machines/agentSession.types.js"
import type { ProfileConfig } from "../config/schema.js"
import { Processes } from "../processes/Processes.js"

const check = (name: string, ok: boolean, detail: string): PreflightCheck => ({ name, ok, detail })

/** What a TUI would ask first does not stop an attempt: the session shows it as waiting-input. */
const advisory = (name: string, ok: boolean, detail: string, tuiAsks = true): PreflightCheck => ({
  name,
  ok,
  detail: ok || !tuiAsks ? detail : `${detail} (the TUI will ask: the session will wait for an answer)`,
  advisory: true
})

/** The HOME the agent will use: its profile's, else the dispatcher's. */
export const agentHome = (profile: ProfileConfig, env: Readonly<Record<string, string>>): string =>
  profile.env.HOME ?? env.HOME ?? os.homedir()

/** The CLI runs and reports its version. */
export const versionCheck = (profile: ProfileConfig, env: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const processes = yield* Processes
    const result = yield* processes
      .run(profile.command, ["--version"], { cwd: os.tmpdir(), env: { ...env, ...profile.env }, timeoutMs: 20_000, tailChars: 400 })
      .pipe(Effect.either)
    if (result._tag === "Left") return check("cli-version", false, `${profile.command} --version could not run: ${result.left.message}`)
    // The version is on stdout; stderr may carry warnings (codex under a temporary HOME, say).
    const firstLine = (result.right.stdout.trim() || result.right.outputTail.trim()).split("\n")[0] ?? ""
    return result.right.exitCode === 0 && firstLine !== ""
      ? check("cli-version", true, firstLine)
      : check("cli-version", false, `${profile.command} --version exited ${result.right.exitCode ?? result.right.signal}: ${firstLine}`)
  })

const readJsonObject = (file: string): Record<string, any> | null => {
  try {
    const doc = JSON.parse(fs.readFileSync(file, "utf8"))
    return doc !== null && typeof doc === "object" ? doc : null
  } catch {
    // missing or not JSON: the callers report that as the advisory check it is
    return null
  }
}

/**
 * What interactive Claude Code asks before it takes a prompt, unless
 * `~/.claude.json` under the agent's HOME already records the answer:
 * onboarding, the folder trust for the repo, and approval of the API key.
 */
export const claudeHomeChecks = (home: string, repo: string | null, apiKey: string | undefined): PreflightCheck[] => {
  const file = path.join(home, ".claude.json")
  const doc = readJsonObject(file)
  if (doc === null) {
    return [advisory("claude-onboarding", false, `${file} is missing or not JSON: the TUI will show its onboarding`)]
  }
  const checks = [
    advisory(
      "claude-onboarding",
      doc.hasCompletedOnboarding === true,
      doc.hasCompletedOnboarding === true ? `done (${file})` : `${file} lacks hasCompletedOnboarding: true`
    )
  ]
  if (repo !== null) {
    const trusted = doc.projects?.[repo]?.hasTrustDialogAccepted === true
    checks.push(
      advisory("claude-folder-trust", trusted, trusted ? `${repo} is trusted` : `${file} has no projects["${repo}"].hasTrustDialogAccepted: true`)
    )
  }
  if (apiKey !== undefined && apiKey !== "") {
    const tail = apiKey.slice(-20)
    const approved = Array.isArray(doc.customApiKeyResponses?.approved) && doc.customApiKeyResponses.approved.includes(tail)
    checks.push(
      advisory(
        "claude-api-key-approved",
        approved,
        approved ? "the API key is approved" : `${file} customApiKeyResponses.approved lacks the key's last 20 characters`
      )
    )
  }
  return checks
}

/** Codex's TUI asks to trust the folder unless its config.toml says `[projects."DIR"] trust_level = "trusted"`. */
export const codexHomeChecks = (codexHome: string, repo: string | null): PreflightCheck[] => {
  const file = path.join(codexHome, "config.toml")
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch {
    // missing (or unreadable): codex then runs on its own defaults, which the advisory check says
    return [advisory("codex-config", false, `${file} is missing: codex will use its own login and defaults`, false)]
  }
  const checks = [check("codex-config", true, file)]
  if (repo !== null) {
    const header = `[projects."${repo.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"]`
    const start = text.indexOf(header)
    const section = start < 0 ? "" : text.slice(start + header.length).split(/^\s*\[/m)[0]!
    const trusted = /^\s*trust_level\s*=\s*"trusted"\s*$/m.test(section)
    checks.push(advisory("codex-folder-trust", trusted, trusted ? `${repo} is trusted` : `${file} has no ${header} trust_level = "trusted"`))
  }
  return checks
}

/** Every check a profile asks for, for one repo (or none, for `warden doctor` without a repo). */
export const cliChecks = (profile: ProfileConfig, env: Readonly<Record<string, string>>, repo: string | null) =>
  Effect.gen(function* () {
    const checks: PreflightCheck[] = []
    if (profile.preflight.version) checks.push(yield* versionCheck(profile, env))
    const home = agentHome(profile, env)
    if (profile.preflight.claudeHome) {
      checks.push(...claudeHomeChecks(home, repo, profile.env.ANTHROPIC_API_KEY ?? env.ANTHROPIC_API_KEY))
    }
    if (profile.preflight.codexHome) {
      checks.push(...codexHomeChecks(profile.env.CODEX_HOME ?? env.CODEX_HOME ?? path.join(home, ".codex"), repo))
    }
    return checks
  })
