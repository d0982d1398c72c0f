import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { Processes } from "../processes/Processes.js"

/** What the work changed in a repo since the commit recorded at dispatch. */
export interface RepoChanges {
  /** `git log --oneline base..HEAD` (all commits when there was no base). */
  readonly newCommits: ReadonlyArray<string>
  /** `git status --porcelain`: staged, unstaged and untracked paths. */
  readonly status: ReadonlyArray<string>
  /** `git diff --stat` against the base, plus the untracked files. */
  readonly diffStat: string
}

/** The git operations Warden needs on a bead's repo. */
export class Git extends Context.Tag("warden/Git")<
  Git,
  {
    readonly isRepo: (dir: string) => Effect.Effect<boolean>
    /** The commit HEAD points at, or null in a repo without commits. */
    readonly head: (dir: string) => Effect.Effect<string | null>
    readonly changesSince: (dir: string, base: string | null) => Effect.Effect<RepoChanges>
  }
>() {}

const lines = (text: string) => text.split("\n").filter((line) => line.trim() !== "")

/**
 * HEAD read from the repo's own files, without starting git: a plain `.git`
 * directory with a branch ref or a detached commit. Anything else (a worktree's
 * `.git` file, a packed or symbolic oddity) is left to git itself (null).
 */
export const readHeadFast = (dir: string): { readonly known: boolean; readonly head: string | null } => {
  try {
    const gitDir = path.join(dir, ".git")
    if (!fs.statSync(gitDir).isDirectory()) return { known: false, head: null }
    const head = fs.readFileSync(path.join(gitDir, "HEAD"), "utf8").trim()
    if (/^[0-9a-f]{40}$/.test(head)) return { known: true, head }
    const ref = /^ref: (refs\/heads\/[^\s]+)$/.exec(head)?.[1]
    if (ref === undefined) return { known: false, head: null }
    try {
      const sha = fs.readFileSync(path.join(gitDir, ref), "utf8").trim()
      return /^[0-9a-f]{40}$/.test(sha) ? { known: true, head: sha } : { known: false, head: null }
    } catch {
      const packed = fs.existsSync(path.join(gitDir, "packed-refs")) ? fs.readFileSync(path.join(gitDir, "packed-refs"), "utf8") : ""
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`))
      // A branch with no commit yet (unborn) has neither a ref file nor a packed ref.
      return line === undefined ? { known: true, head: null } : { known: true, head: line.slice(0, 40) }
    }
  } catch {
    return { known: false, head: null }
  }
}

export const GitLive = Layer.effect(
  Git,
  Effect.gen(function* () {
    const processes = yield* Processes
    const git = (dir: string, args: ReadonlyArray<string>) =>
      processes.run("git", ["-C", dir, ...args], { cwd: dir, timeoutMs: 30_000 }).pipe(
        Effect.map((result) => ({ ok: result.exitCode === 0, stdout: result.stdout })),
        Effect.catchAll(() => Effect.succeed({ ok: false, stdout: "" }))
      )
    return Git.of({
      // The common case (a repo's top directory) is answered from its files: no git process on the dispatch path.
      isRepo: (dir) =>
        readHeadFast(dir).known
          ? Effect.succeed(true)
          : git(dir, ["rev-parse", "--is-inside-work-tree"]).pipe(Effect.map((r) => r.ok && r.stdout.trim() === "true")),
      head: (dir) => {
        const fast = readHeadFast(dir)
        return fast.known
          ? Effect.succeed(fast.head)
          : git(dir, ["rev-parse", "--verify", "-q", "HEAD"]).pipe(Effect.map((r) => (r.ok ? r.stdout.trim() : null)))
      },
      changesSince: (dir, base) =>
        Effect.gen(function* () {
          const head = yield* git(dir, ["rev-parse", "--verify", "-q", "HEAD"])
          const range = base === null ? ["HEAD"] : [`${base}..HEAD`]
          const log = head.ok ? yield* git(dir, ["log", "--format=%h %s", ...range]) : { ok: true, stdout: "" }
          const status = yield* git(dir, ["status", "--porcelain", "--untracked-files=all"])
          const diffBase = base ?? (head.ok ? "HEAD" : null)
          const diff = diffBase === null ? { ok: true, stdout: "" } : yield* git(dir, ["diff", "--stat", diffBase])
          const untracked = lines(status.stdout).filter((line) => line.startsWith("??")).map((line) => ` ${line.slice(3)} (untracked)`)
          return {
            newCommits: lines(log.stdout),
            status: lines(status.stdout),
            diffStat: [diff.stdout.trimEnd(), ...untracked].filter((part) => part !== "").join("\n")
          }
        })
    })
  })
)

/** The test layer: repos described in memory; an unknown repo is not a repo. */
export const makeGitTest = (repos: Record<string, { head: string | null; changes: RepoChanges }>) =>
  Layer.succeed(
    Git,
    Git.of({
      isRepo: (dir) => Effect.succeed(dir in repos),
      head: (dir) => Effect.succeed(repos[dir]?.head ?? null),
      changesSince: (dir) =>
        Effect.succeed(repos[dir]?.changes ?? { newCommits: [], status: [], diffStat: "" })
    })
  )
