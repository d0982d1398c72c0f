import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { PreflightCheck } from "../../machines/agentSession.types.js"
import { cliChecks } from "../agents/cliChecks.js"
import { Processes } from "../processes/Processes.js"
import { CliError, onRuntime, type CliEnvironment } from "./environment.js"
import { dispatcherEnv } from "../sessions/buildSpec.js"
import { table } from "./format.js"

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

/**
 * The profiles this workspace uses: those the operator's config file defines or
 * changes, and those its runs were dispatched with.
 */
const profilesInUse = (env: CliEnvironment): ReadonlySet<string> => {
  const used = new Set<string>()
  if (env.config.file !== null) {
    try {
      const raw = JSON.parse(fs.readFileSync(env.config.file, "utf8")) as { profiles?: Record<string, unknown> }
      for (const name of Object.keys(raw.profiles ?? {})) used.add(name)
    } catch {
      // the config was read and checked at start-up; a file changed since then names nothing here
    }
  }
  let runs: string[] = []
  try {
    runs = fs.readdirSync(env.paths.runs).filter((file) => file.endsWith(".json"))
  } catch {
    // no runs folder (yet): no record names a profile
    runs = []
  }
  for (const file of runs) {
    try {
      const run = JSON.parse(fs.readFileSync(path.join(env.paths.runs, file), "utf8")) as { profile?: unknown }
      if (typeof run.profile === "string") used.add(run.profile)
    } catch {
      // an unreadable record names no profile
    }
  }
  return used
}

/**
 * `warden doctor [--profile NAME ...]`: for each profile, whether its command
 * is on PATH, and the checks it asks for (version, the HOME's onboarding,
 * trust and API-key approval; trust for `--repo` when given). Exit 1 when a
 * check that would stop an attempt fails for a profile in use: one named with
 * `--profile`, or, without it, one the operator's config defines or a run of
 * this workspace used. A built-in profile nobody uses whose CLI is not
 * installed is reported, not failed.
 */
export const doctorCommand = (env: CliEnvironment, repo: string | undefined, json: boolean, named: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const unknown = named.filter((name) => !(name in env.config.profiles))
    if (unknown.length > 0) {
      return yield* new CliError({
        message: `unknown profile ${unknown.map((n) => `"${n}"`).join(", ")}; configured: ${Object.keys(env.config.profiles).sort().join(", ")}`,
        exitCode: 2
      })
    }
    const base = dispatcherEnv()
    const repoPath = repo === undefined ? null : fs.existsSync(repo) ? fs.realpathSync(path.resolve(repo)) : path.resolve(repo)
    const inUse = named.length > 0 ? new Set(named) : profilesInUse(env)
    const report: Array<{ profile: string; inUse: boolean; checks: PreflightCheck[] }> = []
    for (const [name, profile] of Object.entries(env.config.profiles).sort(([a], [b]) => a.localeCompare(b))) {
      if (named.length > 0 && !inUse.has(name)) continue
      const used = inUse.has(name)
      const checks = yield* onRuntime(
        env,
        Effect.gen(function* () {
          const processes = yield* Processes
          const found = yield* processes.which(profile.command, profile.env.PATH ?? base.PATH)
          const onPath: PreflightCheck =
            found !== null
              ? { name: "agent-command", ok: true, detail: found }
              : used
                ? { name: "agent-command", ok: false, detail: `"${profile.command}" is not on PATH` }
                : { name: "agent-command", ok: false, advisory: true, detail: `"${profile.command}" is not installed (profile not in use)` }
          return found === null ? [onPath] : [onPath, ...(yield* cliChecks(profile, base, repoPath))]
        })
      )
      report.push({ profile: name, inUse: used, checks })
    }
    const ok = report.every((entry) => !entry.inUse || entry.checks.every((c) => c.ok || c.advisory === true))
    if (json) yield* print(JSON.stringify({ ok, profiles: report }, null, 2))
    else {
      const rows = [["PROFILE", "IN USE", "CHECK", "RESULT", "DETAIL"]]
      for (const entry of report) {
        for (const c of entry.checks) {
          const result = c.ok ? "ok" : c.advisory || !entry.inUse ? "WARNING" : "FAILED"
          rows.push([entry.profile, entry.inUse ? "yes" : "no", c.name, result, c.detail])
        }
      }
      yield* print(table(rows))
    }
    if (!ok) return yield* new CliError({ message: "some profiles in use are not ready (see FAILED above)", exitCode: 1 })
  })
