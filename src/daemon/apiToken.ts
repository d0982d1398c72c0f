import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { Schema } from "effect"
import { createFileOnce } from "../workspace/atomicFiles.js"
import { isMissing } from "../workspace/missingFile.js"
import { lookupGroup } from "../workspace/statePermissions.js"

/** A token shorter than this (after trimming) is refused: the daemon writes 64 hex characters. */
export const MIN_TOKEN_LENGTH = 32

/**
 * Why the API token file is refused: `not-regular-file` (a symlink or something else), `wrong-owner`,
 * `too-open` (its mode lets others than allowed read or write it), `wrong-group` (group-readable by a group
 * that is not the operators'), `empty`, `too-short`, `whitespace` (inside the token).
 */
export const TokenFileRefusedReason = Schema.Literal(
  "not-regular-file",
  "wrong-owner",
  "too-open",
  "wrong-group",
  "empty",
  "too-short",
  "whitespace"
)
export type TokenFileRefusedReason = typeof TokenFileRefusedReason.Type

/** Why the API token file cannot be trusted (`detail`), with what to do about it (`fix`). */
export class TokenFileRefused extends Schema.TaggedError<TokenFileRefused>()("TokenFileRefused", {
  file: Schema.String,
  reason: TokenFileRefusedReason,
  detail: Schema.String,
  fix: Schema.String
}) {
  override get message(): string {
    return `the API token ${this.file} ${this.detail}; ${this.fix}`
  }
}

const refused = (file: string, reason: TokenFileRefusedReason, detail: string, fix: string) =>
  new TokenFileRefused({ file, reason, detail, fix })


/**
 * Checks the token file before it is trusted: a regular file owned by the
 * daemon's user, mode 0600 (0640 when an operators' group is configured and
 * the file belongs to it), holding a token of at least MIN_TOKEN_LENGTH
 * characters. An empty file (a crash between create and write) would let
 * `?token=` open the feed and the terminal stream, so it is refused, never used.
 */
export const checkTokenFile = (file: string, options: { operatorsGroup?: string | undefined }): string => {
  const stat = fs.lstatSync(file)
  const recreate = `remove it (rm ${file}) and start the daemon again: it writes a new one`
  if (!stat.isFile()) throw refused(file, "not-regular-file", "is not a regular file (a symlink or something else)", recreate)
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) {
    throw refused(file, "wrong-owner", `is owned by uid ${stat.uid}, not by the daemon's user (uid ${uid})`, `chown ${uid} ${file}, or ${recreate}`)
  }
  const mode = stat.mode & 0o777
  const group = options.operatorsGroup
  const allowed = group === undefined ? 0o600 : 0o640
  if ((mode & ~allowed) !== 0) {
    const modeText = mode.toString(8).padStart(4, "0")
    const what =
      (mode & 0o022) !== 0
        ? "writable by others than its owner"
        : (mode & 0o004) !== 0
          ? "readable by every local user"
          : group === undefined
            ? "readable by its group, and no operatorsGroup is configured"
            : "open beyond 0640"
    throw refused(
      file,
      "too-open",
      `has mode ${modeText}: it is ${what}`,
      group === undefined ? `chmod 600 ${file}` : `chmod 640 ${file} (group ${group} may read it), or chmod 600`
    )
  }
  if ((mode & 0o040) !== 0 && group !== undefined) {
    const gid = lookupGroup(group)
    if (gid === null) throw refused(file, "wrong-group", `is group-readable, but the operators' group "${group}" does not exist`, `chmod 600 ${file}, or create the group`)
    if (stat.gid !== gid) throw refused(file, "wrong-group", `is group-readable by gid ${stat.gid}, not by the operators' group ${group} (gid ${gid})`, `chgrp ${group} ${file}, or chmod 600 ${file}`)
  }
  const token = fs.readFileSync(file, "utf8").trim()
  if (token.length === 0) throw refused(file, "empty", "is empty (left by a crash or a full disk?)", recreate)
  if (token.length < MIN_TOKEN_LENGTH) throw refused(file, "too-short", `holds a token of ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are required`, recreate)
  if (/\s/.test(token)) throw refused(file, "whitespace", "holds whitespace inside the token", recreate)
  return token
}

/**
 * Creates the token file atomically: written and synced under a temporary
 * name, then linked into place (link never replaces an existing file), so a
 * crash leaves either no token file or a whole one, and two daemons starting
 * at once end with one token.
 */
const createTokenFile = (file: string, gid: number | null): void => {
  // With an operators' group, its members may read the token (0640); otherwise only the daemon's user.
  // Of two daemons starting at once, the first one's token stays; theirs is checked and used.
  createFileOnce(file, `${randomBytes(32).toString("hex")}\n`, { mode: gid === null ? 0o600 : 0o640, gid })
}

/** The API token: created at first start (0600, or 0640 for the operators' group), then checked on every start; a file that cannot be trusted is refused. */
export const ensureToken = (file: string, options: { operatorsGroup?: string | undefined } = {}): string => {
  if (!entryExists(file)) createTokenFile(file, options.operatorsGroup === undefined ? null : lookupGroup(options.operatorsGroup))
  return checkTokenFile(file, options)
}

/** lstat, not exists: a dangling symlink is an entry to refuse, not a missing token to create. */
const entryExists = (file: string): boolean => {
  try {
    fs.lstatSync(file)
    return true
  } catch (error) {
    // Only a missing token is created; one that cannot be looked at (no permission) is a failure to name, not to write over.
    if (isMissing(error)) return false
    throw error
  }
}
