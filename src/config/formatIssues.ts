import { ParseResult } from "effect"

/** One problem in a decoded document: where (`a.b.0`, empty for the whole document) and what. */
export interface DecodeIssue {
  readonly path: string
  readonly message: string
}

const EXPECTED = /^Expected (.+), actual (.+)$/s

/**
 * A parse error as one issue per path, the way an operator reads it. Effect
 * reports a union's failure once per member (`Expected "a", actual "x"`,
 * `Expected "b", actual "x"`) and an optional field's failure also as
 * `Expected undefined`: the members are joined (`Expected "a" | "b", actual
 * "x"`) and the `undefined` alternative is dropped when something more
 * precise was said at or below the same path.
 */
export const formatIssues = (error: ParseResult.ParseError): ReadonlyArray<DecodeIssue> => {
  const raw = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message
  }))
  const isUndefinedAlternative = (issue: DecodeIssue) => /^Expected undefined, actual /.test(issue.message)
  const precise = raw.filter((issue) => !isUndefinedAlternative(issue))
  const kept = raw.filter(
    (issue) =>
      !isUndefinedAlternative(issue) ||
      !precise.some((other) => other.path === issue.path || issue.path === "" || other.path.startsWith(`${issue.path}.`))
  )
  const byPath = new Map<string, string[]>()
  for (const issue of kept) {
    const messages = byPath.get(issue.path) ?? []
    if (!messages.includes(issue.message)) messages.push(issue.message)
    byPath.set(issue.path, messages)
  }
  return [...byPath.entries()].flatMap(([path, messages]) => {
    const expected = messages.map((message) => EXPECTED.exec(message))
    const actuals = new Set(expected.map((match) => match?.[2]))
    if (messages.length > 1 && expected.every((match) => match !== null) && actuals.size === 1) {
      return [{ path, message: `Expected ${expected.map((match) => match![1]).join(" | ")}, actual ${expected[0]![2]}` }]
    }
    return messages.map((message) => ({ path, message }))
  })
}
