import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { PreflightCheck } from "../../machines/agentSession.machine.js"
import { cliChecks } from "../agents/cliChecks.js"
import { Processes } from "../processes/Processes.js"
import { CliError, dispatcherEnv, onRuntime, type CliEnvironment } from "./environment.js"
import { table } from "./format.js"

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

/**
 * `warden doctor`: for every configured profile, whether its command is on
 * PATH, and the checks it asks for (version, the HOME's onboarding, trust and
 * API-key approval; trust for `--repo` when given). Exit 1 when a check that
 * would stop an attempt fails; what a TUI would ask is a warning.
 */
export const doctorCommand = (env: CliEnvironment, repo: string | undefined, json: boolean) =>
  Effect.gen(function* () {
    const base = dispatcherEnv()
    const repoPath = repo === undefined ? null : fs.existsSync(repo) ? fs.realpathSync(path.resolve(repo)) : path.resolve(repo)
    const report: Array<{ profile: string; checks: PreflightCheck[] }> = []
    for (const [name, profile] of Object.entries(env.config.profiles).sort(([a], [b]) => a.localeCompare(b))) {
      const checks = yield* onRuntime(
        env,
        Effect.gen(function* () {
          const processes = yield* Processes
          const found = yield* processes.which(profile.command, profile.env.PATH ?? base.PATH)
          const onPath: PreflightCheck = { name: "agent-command", ok: found !== null, detail: found ?? `"${profile.command}" is not on PATH` }
          return found === null ? [onPath] : [onPath, ...(yield* cliChecks(profile, base, repoPath))]
        })
      )
      report.push({ profile: name, checks })
    }
    const ok = report.every((entry) => entry.checks.every((c) => c.ok || c.advisory === true))
    if (json) yield* print(JSON.stringify({ ok, profiles: report }, null, 2))
    else {
      const rows = [["PROFILE", "CHECK", "RESULT", "DETAIL"]]
      for (const entry of report) for (const c of entry.checks) rows.push([entry.profile, c.name, c.ok ? "ok" : c.advisory ? "WARNING" : "FAILED", c.detail])
      yield* print(table(rows))
    }
    if (!ok) return yield* new CliError({ message: "some profiles are not ready (see FAILED above)", exitCode: 1 })
  })
