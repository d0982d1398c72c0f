import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readHeadFast } from "../src/git/Git.js"

const git = (cwd: string, ...args: string[]) =>
  spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd, encoding: "utf8" }).stdout.trim()

describe("HEAD read without git", () => {
  it("agrees with git rev-parse for a branch, a packed ref, a detached HEAD and an unborn branch", () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), "warden-git-"))
    git(repo, "init", "-q", "-b", "main")
    expect(readHeadFast(repo)).toEqual({ known: true, head: null })
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    expect(readHeadFast(repo).head).toBe(git(repo, "rev-parse", "HEAD"))
    git(repo, "pack-refs", "--all")
    expect(fs.existsSync(path.join(repo, ".git", "refs", "heads", "main"))).toBe(false)
    expect(readHeadFast(repo).head).toBe(git(repo, "rev-parse", "HEAD"))
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    git(repo, "checkout", "-q", "--detach")
    expect(readHeadFast(repo)).toEqual({ known: true, head: git(repo, "rev-parse", "HEAD") })
    // Not a repo's top directory: left to git.
    fs.mkdirSync(path.join(repo, "sub"))
    expect(readHeadFast(path.join(repo, "sub")).known).toBe(false)
  })
})
