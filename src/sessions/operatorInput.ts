import { createHmac, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { WorkspacePaths } from "../workspace/paths.js"
import { createFileOnce } from "../workspace/atomicFiles.js"
import { keyProblem, keysProblem } from "../terminals/keyNames.js"
import { controlCharacterProblem, normalizeLineEnds } from "../terminals/typedText.js"

/**
 * What an operator typed into an agent's terminal is kept out of the
 * records: a password typed into a prompt is a password. The signal log
 * (`state/watch/<bead>.signals.jsonl`) gets one `input` line per send with
 * the text's length, the keys pressed (single characters masked), and a
 * keyed digest of the text, never the text.
 *
 * The digest lets `warden signal --from codex-notify` (a separate process,
 * run by the agent) tell an answer's turn from codex's own side turns
 * without the text: it computes the same digest over each of the turn's
 * input messages. The key is random per attempt, kept in a file of mode
 * 0600 next to the attempt's other files (the daemon and the CLI run as the
 * same user as the agent; no one else may read it) and removed with them
 * when the attempt is cleaned. Without the key a digest says nothing about
 * the text, not even to a dictionary: an unkeyed hash of a short password
 * would.
 */

/** The per-attempt key's file: `state/watch/<bead>.<attempt>.input-key`. */
export const inputKeyFile = (paths: WorkspacePaths, bead: string, attemptId: string): string =>
  path.join(paths.watch, `${bead}.${attemptId}.input-key`)

/** The attempt's key, created (atomically, 0600) by whoever needs it first. */
const attemptKey = (paths: WorkspacePaths, bead: string, attemptId: string, create: boolean): Buffer | null => {
  const file = inputKeyFile(paths, bead, attemptId)
  const read = (): Buffer | null => {
    try {
      const key = fs.readFileSync(file)
      return key.length === 32 ? key : null
    } catch {
      // no key file (yet), or unreadable: no input can be verified with it
      return null
    }
  }
  const existing = read()
  if (existing !== null || !create) return existing
  // Whoever sends first creates it; a writer that lost the race reads the winner's.
  createFileOnce(file, randomBytes(32), { mode: 0o600 })
  return read()
}

/** Text as codex shows it back and as it is compared: white space collapsed. */
const normalize = (text: string) => text.replace(/\s+/g, " ").trim()

const digestWith = (key: Buffer, text: string): string => `hmac-sha256:${createHmac("sha256", key).update(normalize(text)).digest("hex")}`

/** Named keys are recorded as named; a plain single character could be part of a secret and is masked. */
const keyForRecord = (key: string): string => {
  if (keyProblem(key) !== null) return "<invalid>"
  const base = key.replace(/^([CMS]-)+(?=.)/, "")
  const modifiers = key.slice(0, key.length - base.length)
  return [...base].length === 1 && !/[CM]-/.test(modifiers) ? `${modifiers}<char>` : key
}

/** The signal-log line for one send: lengths, key names, a keyed digest; never the text. */
export const inputSignalLine = (
  paths: WorkspacePaths,
  bead: string,
  attemptId: string,
  sent: { readonly text: string | undefined; readonly keys: ReadonlyArray<string>; readonly enter: boolean; readonly via: "api" | "stream" | "cli" }
): Record<string, unknown> => {
  const text = sent.text ?? ""
  const key = text === "" ? null : attemptKey(paths, bead, attemptId, true)
  return {
    type: "input",
    bead,
    attempt_id: attemptId,
    via: sent.via,
    chars: [...text].length,
    keys: sent.keys.map(keyForRecord),
    enter: sent.enter,
    digest: key === null ? null : digestWith(key, text),
    at: Date.now(),
    pid: process.pid
  }
}

/** Appends the send's line to the bead's signal log (one short line, O_APPEND: writers never interleave). */
export const recordInput = (
  paths: WorkspacePaths,
  bead: string,
  attemptId: string,
  sent: Parameters<typeof inputSignalLine>[3]
): void => {
  fs.mkdirSync(paths.watch, { recursive: true })
  fs.appendFileSync(paths.signalsFile(bead), `${JSON.stringify(inputSignalLine(paths, bead, attemptId, sent))}\n`)
}

/**
 * Whether `text` (a message the agent received) is one that was sent to this
 * attempt through Warden: a test built from the attempt's signal log and key.
 */
export const sentInputMatcher = (paths: WorkspacePaths, bead: string, attemptId: string | undefined): ((text: string) => boolean) => {
  if (attemptId === undefined || attemptId === "") return () => false
  let lines: Array<string>
  try {
    lines = fs.readFileSync(paths.signalsFile(bead), "utf8").split("\n")
  } catch {
    // no signals file: no input was recorded for this attempt
    return () => false
  }
  const digests = new Set(
    lines.flatMap((line) => {
      try {
        const doc = JSON.parse(line) as Record<string, unknown>
        return doc.type === "input" && doc.attempt_id === attemptId && typeof doc.digest === "string" ? [doc.digest] : []
      } catch {
        // a torn line is no input record
        return []
      }
    })
  )
  if (digests.size === 0) return () => false
  const key = attemptKey(paths, bead, attemptId, false)
  if (key === null) return () => false
  return (text) => digests.has(digestWith(key, text))
}

/**
 * Checks what an operator or a coordinator asked to type: line ends made LF,
 * then no control character in the text and only tmux key names as keys.
 * Refused, never cleaned up: the sender learns which character or key, and where.
 */
export const checkOperatorInput = (
  text: string | undefined,
  keys: ReadonlyArray<string>
): { readonly ok: true; readonly text: string | undefined } | { readonly ok: false; readonly problem: string } => {
  const normalized = text === undefined ? undefined : normalizeLineEnds(text)
  // Checked with each CR as a LF, one for one, so the position named is the one in the text as sent.
  const textProblem = text === undefined ? null : controlCharacterProblem(text.replace(/\r/g, "\n"))
  if (textProblem !== null) return { ok: false, problem: textProblem }
  const keyProblems = keysProblem(keys)
  if (keyProblems !== null) return { ok: false, problem: keyProblems }
  return { ok: true, text: normalized }
}
