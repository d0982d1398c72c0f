import { Either, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Why a template was refused: `invalid-name` (not a template name), `not-found`, `unreadable` (found but
 * cannot be read), `syntax` (an unterminated `{{` or an invalid variable name), `unknown-variable`.
 */
export const TemplateErrorReason = Schema.Literal("invalid-name", "not-found", "unreadable", "syntax", "unknown-variable")
export type TemplateErrorReason = typeof TemplateErrorReason.Type

/** A template that cannot be found, read or rendered; `detail` (the message) names the file and line. */
export class TemplateError extends Schema.TaggedError<TemplateError>()("TemplateError", {
  template: Schema.String,
  reason: TemplateErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The templates Warden ships in its `templates/` directory. */
export const templateNames: readonly string[] = [
  "feature",
  "bug-fix",
  "refactor",
  "code-review",
  "docs",
  "script",
  "custom"
]

/** The values a template may refer to as `{{name}}`. */
export interface TemplateVars {
  bead: string
  title: string
  description: string
  repo: string
  acceptance: string
  attempt_id: string
  status_file: string
}

const variableNames: ReadonlySet<string> = new Set<keyof TemplateVars>([
  "bead",
  "title",
  "description",
  "repo",
  "acceptance",
  "attempt_id",
  "status_file"
])

/** A template's name: lower-case letters, digits and dashes (so it is a plain file name). */
export const templateNamePattern = /^[a-z0-9][a-z0-9-]*$/
const variableNamePattern = /^[A-Za-z0-9._-]+$/

const isFile = (file: string): boolean => {
  try {
    return fs.statSync(file).isFile()
  } catch {
    // not there (or not reachable): this directory has no such template; the caller names both it looked in
    return false
  }
}

/** Finds `<name>.md` first in the workspace override dir, then the built-in dir. */
export const findTemplate = (
  name: string,
  dirs: { workspace: string; builtin: string }
): { file: string; source: "workspace" | "builtin" } | null => {
  if (!templateNamePattern.test(name)) return null
  const workspaceFile = path.join(dirs.workspace, `${name}.md`)
  if (isFile(workspaceFile)) return { file: workspaceFile, source: "workspace" }
  const builtinFile = path.join(dirs.builtin, `${name}.md`)
  if (isFile(builtinFile)) return { file: builtinFile, source: "builtin" }
  return null
}

const lineAt = (text: string, index: number): number => {
  let line = 1
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/** Substitutes the placeholders of one template's text in a single pass (substituted values are not re-scanned). */
const substitute = (
  template: string,
  file: string,
  source: string,
  vars: TemplateVars
): Either.Either<string, TemplateError> => {
  const values = vars as unknown as Record<string, string>
  let out = ""
  let pos = 0
  for (;;) {
    const open = source.indexOf("{{", pos)
    if (open < 0) break
    const close = source.indexOf("}}", open + 2)
    const line = lineAt(source, open)
    if (close < 0) {
      return Either.left(new TemplateError({ template, reason: "syntax", detail: `${file}:${line}: unterminated "{{"` }))
    }
    const raw = source.slice(open + 2, close)
    const name = raw.trim()
    if (!variableNamePattern.test(name)) {
      return Either.left(
        new TemplateError({ template, reason: "syntax", detail: `${file}:${line}: invalid variable name ${JSON.stringify(raw)}` })
      )
    }
    if (!variableNames.has(name)) {
      return Either.left(
        new TemplateError({
          template,
          reason: "unknown-variable",
          detail: `${file}:${line}: unknown variable "${name}" (known: ${[...variableNames].join(", ")})`
        })
      )
    }
    out += source.slice(pos, open) + String(values[name] ?? "")
    pos = close + 2
  }
  return Either.right(out + source.slice(pos))
}

/**
 * Renders `{{var}}` placeholders (whitespace inside braces allowed). An unknown variable name, an
 * unterminated `{{`, a name that is not [A-Za-z0-9._-]+, or a missing template file is a TemplateError
 * naming the template, the variable/line.
 */
export const renderTemplate = (
  name: string,
  vars: TemplateVars,
  dirs: { workspace: string; builtin: string }
): Either.Either<{ text: string; file: string }, TemplateError> => {
  if (!templateNamePattern.test(name)) {
    return Either.left(
      new TemplateError({ template: name, reason: "invalid-name", detail: `invalid template name ${JSON.stringify(name)} (must match ${templateNamePattern})` })
    )
  }
  const found = findTemplate(name, dirs)
  if (found === null) {
    return Either.left(
      new TemplateError({
        template: name,
        reason: "not-found",
        detail: `template "${name}.md" not found in ${dirs.workspace} or ${dirs.builtin}`
      })
    )
  }
  let source: string
  try {
    source = fs.readFileSync(found.file, "utf8")
  } catch (error) {
    return Either.left(
      new TemplateError({ template: name, reason: "unreadable", detail: `cannot read ${found.file}: ${error instanceof Error ? error.message : String(error)}` })
    )
  }
  return Either.map(substitute(name, found.file, source, vars), (text) => ({ text, file: found.file }))
}
