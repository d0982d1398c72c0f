import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { PreflightCheck } from "../../machines/agentSession.types.js"
import { Git } from "../git/Git.js"
import { Processes } from "../processes/Processes.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { expandHome } from "../workspace/paths.js"
import { BEAD_ID, type DispatchSpec } from "./dispatchSpec.js"
import { RecordStore } from "../records/RecordStore.js"
import { supervisorAlive } from "./supervisorLiveness.js"
import { runIsLive } from "./reconcile.js"
import { cliChecks } from "../agents/cliChecks.js"
import { availableMemoryMb } from "../system/memory.js"

const check = (name: string, ok: boolean, detail: string): PreflightCheck => ({ name, ok, detail })

const realpathOrNull = (p: string): string | null => {
  try {
    return fs.realpathSync(p)
  } catch {
    // does not resolve: the check that needs it names the path
    return null
  }
}

/** The executable the profile runs (the custom profile runs `sh`). */
export const agentCommand = (spec: DispatchSpec): string => spec.profile.config.command

/** The services a preflight reads. */
export type PreflightServices = Terminals | Processes | Git | RecordStore

/**
 * Every check that must pass before an attempt may start. All of them run,
 * so the result names every failed check at once.
 *
 * It cannot fail: what it finds wrong is a failed check, and a check that
 * could not run at all (a defect in a service or here) is the failed check
 * `preflight-ran`, naming what went wrong, so the attempt fails its preflight
 * with that reason instead of crashing the session's actor.
 */
export const runPreflight = (spec: DispatchSpec): Effect.Effect<ReadonlyArray<PreflightCheck>, never, PreflightServices> =>
  checksOf(spec).pipe(
    Effect.catchAllDefect((defect) =>
      Effect.succeed([check("preflight-ran", false, `a check could not run: ${defect instanceof Error ? defect.message : String(defect)}`)])
    )
  )

const checksOf = (spec: DispatchSpec) =>
  Effect.gen(function* () {
    const terminals = yield* Terminals
    const processes = yield* Processes
    const git = yield* Git
    const records = yield* RecordStore
    const checks: PreflightCheck[] = []

    const beadOk = BEAD_ID.test(spec.bead)
    checks.push(check("bead-id", beadOk, beadOk ? spec.bead : `"${spec.bead}" does not match ${BEAD_ID.source}`))

    const repo = path.resolve(expandHome(spec.repo))
    const real = realpathOrNull(repo)
    // Removed between the two calls, it is not a directory (no entry: undefined).
    const isDir = real !== null && fs.statSync(real, { throwIfNoEntry: false })?.isDirectory() === true
    checks.push(check("repo-exists", isDir, isDir ? real : `${repo} is not a directory`))
    if (isDir) {
      const isRepo = yield* git.isRepo(real)
      checks.push(check("repo-is-git", isRepo, isRepo ? "git work tree" : `${real} is not a git work tree`))
      let writable = true
      try {
        fs.accessSync(real, fs.constants.W_OK)
      } catch {
        // the check names the failure
        writable = false
      }
      checks.push(check("repo-writable", writable, writable ? "writable" : `${real} is not writable by uid ${process.getuid?.()}`))
      const roots = spec.config.allowedRoots.map((root) => realpathOrNull(expandHome(root))).filter((r): r is string => r !== null)
      const under = roots.find((root) => real === root || real.startsWith(root.endsWith("/") ? root : `${root}/`))
      checks.push(
        check(
          "repo-allowed-root",
          under !== undefined,
          under !== undefined ? `under ${under}` : `${real} is not under an allowed root (${spec.config.allowedRoots.join(", ")})`
        )
      )
      // Two live beads in one work tree cannot tell their work apart (verification credits a bead with what
      // changed while it ran): a warning until worktrees come.
      const listed = yield* records.listRuns
      const sharing = listed.runs
        .filter((run) => run.bead !== spec.bead && runIsLive(run) && realpathOrNull(run.repo) === real)
        .map((run) => run.bead)
        .sort()
      checks.push({
        name: "repo-not-shared",
        ok: sharing.length === 0,
        advisory: true,
        detail:
          sharing.length === 0
            ? "no other live bead works in this repo"
            : `${sharing.join(", ")} ${sharing.length === 1 ? "is" : "are"} live in ${real} too: their work and this bead's cannot be told apart; give each bead its own repo or worktree`
      })
    }

    const command = agentCommand(spec)
    const found = yield* processes.which(command, spec.env.PATH)
    checks.push(check("agent-command", found !== null, found ?? `"${command}" is not on PATH`))
    if (spec.profile.name === "custom" || spec.profile.config.args.some((a) => a.includes("{command}"))) {
      const ok = spec.command !== null && spec.command.trim() !== ""
      checks.push(check("custom-command", ok, ok ? spec.command! : "the custom profile needs --command CMD"))
    }

    if (found !== null) checks.push(...(yield* cliChecks(spec.profile.config, spec.env, isDir ? real : null)))

    const isRoot = process.getuid?.() === 0
    checks.push(
      check(
        "not-root",
        !isRoot || spec.config.allowRootResolved,
        !isRoot ? `uid ${process.getuid?.()}` : spec.config.allowRootResolved ? "root, allowed by config" : "running as root; set allowRoot or WARDEN_ALLOW_ROOT=1 to allow it"
      )
    )

    const diskDir = isDir ? real : spec.paths.root
    let freeDiskMb = Number.NaN
    try {
      const stat = fs.statfsSync(fs.existsSync(diskDir) ? diskDir : "/")
      freeDiskMb = Math.floor((stat.bavail * stat.bsize) / 1024 / 1024)
    } catch {
      // reported below
    }
    checks.push(
      check(
        "disk-free",
        freeDiskMb >= spec.config.minFreeDiskMb,
        `${freeDiskMb} MB free, need ${spec.config.minFreeDiskMb} MB`
      )
    )
    const memMb = availableMemoryMb()
    checks.push(check("memory-free", memMb >= spec.config.minFreeMemoryMb, `${memMb} MB available, need ${spec.config.minFreeMemoryMb} MB`))

    const socketProblem = yield* terminals.socketProblem
    checks.push(check("tmux-socket", socketProblem === null, socketProblem ?? `${terminals.socket} is safe to use`))

    const sessionName = sessionNameFor(spec.bead)
    const record = beadOk ? yield* records.readRun(spec.bead).pipe(Effect.catchAll(() => Effect.succeed(null))) : null
    const otherSupervisor =
      record !== null && runIsLive(record) && record.supervisor.pid !== spec.supervisor.pid && supervisorAlive(record.supervisor)
    let info = beadOk ? yield* terminals.info(sessionName).pipe(Effect.catchAll(() => Effect.succeed(null))) : null
    let removed = false
    if (info !== null && info.dead && !otherSupervisor) {
      // A dead pane nobody supervises is a leftover (its program ended; tmux kept it for capture).
      yield* terminals.kill(sessionName).pipe(Effect.ignore)
      info = null
      removed = true
    }
    checks.push(
      check(
        "no-live-session",
        info === null && !otherSupervisor,
        otherSupervisor
          ? `bead is being supervised by pid ${record!.supervisor.pid}`
          : info !== null
            ? `tmux session ${sessionName} already exists on ${terminals.socket}`
            : removed
              ? `${sessionName} is free (removed a dead leftover session)`
              : `${sessionName} is free`
      )
    )

    // A command (`custom`) is the work itself: its prompt may be empty.
    const emptyAllowed = spec.command !== null && spec.templateName === null
    const empty = spec.prompt.ok && spec.prompt.text.trim() === ""
    checks.push(
      check(
        "template-renders",
        spec.prompt.ok && (!empty || emptyAllowed),
        spec.prompt.ok
          ? empty
            ? emptyAllowed
              ? "no prompt: the command is the work"
              : "the prompt is empty"
            : `${spec.templateName ?? "prompt"} rendered`
          : spec.prompt.error
      )
    )
    return checks
  })
