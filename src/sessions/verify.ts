import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect } from "effect"
import type { VerificationCheck, VerifyOutput } from "../../machines/agentSession.types.js"
import type { ResolvedConfig } from "../config/loadConfig.js"
import { Git, type ChangesScope } from "../git/Git.js"
import { Processes } from "../processes/Processes.js"

const hasTestScript = (repo: string): boolean => {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { scripts?: Record<string, string> }
    const test = pkg.scripts?.test
    return typeof test === "string" && !/no test specified/.test(test)
  } catch {
    // no package.json (or not JSON): no test script to run
    return false
  }
}

/**
 * Runs the configured checks in the repo: its tests when it has them, the
 * operator's checks, and "the work changed something": commits since the base
 * made while the attempt ran, or staged, unstaged or untracked paths that
 * differ from how they were at its launch (`scope`). A check that prints
 * nothing is still a result.
 */
export const runVerification = (
  config: ResolvedConfig,
  repo: string,
  baseCommit: string | null,
  env: Record<string, string>,
  scope: ChangesScope = {}
) =>
  Effect.gen(function* () {
    const processes = yield* Processes
    const git = yield* Git
    const settings = config.verification
    const checks: VerificationCheck[] = []
    const commandCheck = (name: string, command: string, timeoutMs: number) =>
      processes.run("sh", ["-c", command], { cwd: repo, env: { ...env, CI: "true" }, timeoutMs, tailChars: settings.outputTailChars }).pipe(
        Effect.map((result): VerificationCheck => ({
          name,
          status: result.exitCode === 0 && !result.timedOut ? "pass" : "fail",
          durationMs: result.durationMs,
          exitCode: result.exitCode,
          outputTail: result.outputTail,
          detail: result.timedOut
            ? `timed out after ${timeoutMs} ms`
            : result.exitCode === 0
              ? `\`${command}\` exited 0${result.outputTail === "" ? " (no output)" : ""}`
              : `\`${command}\` exited ${result.exitCode ?? result.signal}`
        })),
        Effect.catchAll((error) =>
          Effect.succeed<VerificationCheck>({ name, status: "fail", durationMs: 0, exitCode: null, outputTail: "", detail: error.message })
        )
      )

    if (settings.repoTests) {
      if (hasTestScript(repo)) checks.push(yield* commandCheck("tests", "npm test", settings.repoTestsTimeoutMs))
      else checks.push({ name: "tests", status: "skipped", durationMs: 0, exitCode: null, outputTail: "", detail: "the repo has no test script" })
    }
    for (const check of settings.checks) {
      if (check.when !== undefined && !fs.existsSync(path.join(repo, check.when))) {
        checks.push({ name: check.name, status: "skipped", durationMs: 0, exitCode: null, outputTail: "", detail: `no ${check.when} in the repo` })
        continue
      }
      checks.push(yield* commandCheck(check.name, check.command, check.timeoutMs))
    }
    const started = yield* Clock.currentTimeMillis
    const changes = yield* git.changesSince(repo, baseCommit, scope)
    const changed = changes.newCommits.length > 0 || changes.status.length > 0
    if (settings.requireChanges) {
      checks.push({
        name: "changes",
        status: changed ? "pass" : "fail",
        durationMs: (yield* Clock.currentTimeMillis) - started,
        exitCode: null,
        outputTail: [...changes.newCommits, ...changes.status].join("\n").slice(-settings.outputTailChars),
        detail: changed
          ? `${changes.newCommits.length} new commit(s), ${changes.status.length} uncommitted path(s)`
          : `nothing changed since ${baseCommit ?? "the start"}`
      })
    }
    const at = yield* Clock.currentTimeMillis
    return {
      at,
      overall: checks.some((check) => check.status === "fail") ? "fail" : "pass",
      checks,
      diffStat: changes.diffStat,
      newCommits: changes.newCommits
    } satisfies VerifyOutput
  })
