import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { Processes } from "../processes/Processes.js"

/** What the work changed in a repo since the commit recorded at dispatch. */
export interface RepoChanges {
  /** `git log --oneline base..HEAD` (all commits when there was no base), made since `sinceMs` when given. */
  readonly newCommits: ReadonlyArray<string>
  /** `git status --porcelain`: staged, unstaged and untracked paths, less those as they were in the baseline. */
  readonly status: ReadonlyArray<string>
  /** `git diff --stat` against the base, plus the untracked files. */
  readonly diffStat: string
}

/**
 * The uncommitted paths of a repo at one moment, each with a fingerprint of
 * its status and content (`git status` at an attempt's launch), so that what
 * an attempt changed can be told from what was already there.
 */
export type StatusBaseline = Readonly<Record<string, string>>

/** What counts as this attempt's: commits made from `sinceMs` on, paths that differ from `baseline`. */
export interface ChangesScope {
  readonly sinceMs?: number | undefined
  readonly baseline?: StatusBaseline | undefined
}

/** The git operations Warden needs on a bead's repo. */
export class Git extends Context.Tag("warden/Git")<
  Git,
  {
    readonly isRepo: (dir: string) => Effect.Effect<boolean>
    /** The commit HEAD points at, or null in a repo without commits. */
    readonly head: (dir: string) => Effect.Effect<string | null>
    readonly changesSince: (dir: string, base: string | null, scope?: ChangesScope) => Effect.Effect<RepoChanges>
    /** The uncommitted paths now, fingerprinted (for `changesSince`'s baseline). */
    readonly statusBaseline: (dir: string) => Effect.Effect<StatusBaseline>
  }
>() {}

const lines = (text: string) => text.split("\n").filter((line) => line.trim() !== "")

/** `git status --porcelain -z` as [status, path] pairs (a rename's source is skipped). */
const porcelainEntries = (text: string): Array<readonly [string, string]> => {
  const fields = text.split("\0")
  const out: Array<readonly [string, string]> = []
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!
    if (field.length < 4) continue
    const code = field.slice(0, 2)
    out.push([code, field.slice(3)])
    if (code.includes("R") || code.includes("C")) i++
  }
  return out
}

/** A path's status and content, so a path that was dirty before and is changed again is told from one left as it was. */
const fingerprint = (dir: string, code: string, file: string): string => {
  const full = path.join(dir, file)
  try {
    const stat = fs.statSync(full)
    if (!stat.isFile()) return `${code} ${stat.isDirectory() ? "dir" : "other"}`
    // Large files by size and time, the rest by content.
    if (stat.size > 64 * 1024 * 1024) return `${code} ${stat.size} ${stat.mtimeMs}`
    return `${code} ${createHash("sha1").update(fs.readFileSync(full)).digest("hex")}`
  } catch {
    // removed (or unreadable) since git listed it: fingerprinted as missing
    return `${code} missing`
  }
}

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
      // no loose ref: look in packed-refs
      const packed = fs.existsSync(path.join(gitDir, "packed-refs")) ? fs.readFileSync(path.join(gitDir, "packed-refs"), "utf8") : ""
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`))
      // A branch with no commit yet (unborn) has neither a ref file nor a packed ref.
      return line === undefined ? { known: true, head: null } : { known: true, head: line.slice(0, 40) }
    }
  } catch {
    // unknown: git itself is asked instead (see the doc above)
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
      changesSince: (dir, base, scope = {}) =>
        Effect.gen(function* () {
          const head = yield* git(dir, ["rev-parse", "--verify", "-q", "HEAD"])
          const range = base === null ? ["HEAD"] : [`${base}..HEAD`]
          // Reachable from HEAD and not from the base, and made while the attempt ran (git keeps whole seconds).
          const log = head.ok ? yield* git(dir, ["log", "--format=%ct %h %s", ...range]) : { ok: true, stdout: "" }
          const since = scope.sinceMs === undefined ? null : Math.floor(scope.sinceMs / 1000)
          const newCommits = lines(log.stdout).flatMap((line) => {
            const [time, ...rest] = line.split(" ")
            return since === null || Number(time) >= since ? [rest.join(" ")] : []
          })
          const status = yield* git(dir, ["status", "--porcelain", "-z", "--untracked-files=all"])
          const baseline = scope.baseline ?? {}
          // A path as it already was at the launch is not this attempt's work.
          const entries = porcelainEntries(status.stdout).filter(([code, file]) => baseline[file] === undefined || baseline[file] !== fingerprint(dir, code, file))
          const diffBase = base ?? (head.ok ? "HEAD" : null)
          const diff = diffBase === null ? { ok: true, stdout: "" } : yield* git(dir, ["diff", "--stat", diffBase])
          const untracked = entries.filter(([code]) => code === "??").map(([, file]) => ` ${file} (untracked)`)
          return {
            newCommits,
            status: entries.map(([code, file]) => `${code} ${file}`),
            diffStat: [diff.stdout.trimEnd(), ...untracked].filter((part) => part !== "").join("\n")
          }
        }),
      statusBaseline: (dir) =>
        git(dir, ["status", "--porcelain", "-z", "--untracked-files=all"]).pipe(
          Effect.map((status) => Object.fromEntries(porcelainEntries(status.stdout).map(([code, file]) => [file, fingerprint(dir, code, file)])))
        )
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
        Effect.succeed(repos[dir]?.changes ?? { newCommits: [], status: [], diffStat: "" }),
      statusBaseline: () => Effect.succeed({})
    })
  )
