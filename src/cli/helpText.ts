/**
 * @effect/cli's help and errors, made to read like a Unix command's: no
 * colours unless on a terminal, none of its filler lines, usage lines that
 * start with `warden`, options that may be left out shown in brackets.
 */

const ANSI = /\x1b\[[0-9;]*m/g

/** Lines @effect/cli adds to every option of a kind, which say nothing about the option. */
const FILLER = new Set(["A user-defined piece of text.", "A true or false value.", "An integer.", "A floating point number.", "This option can be set from environment variables."])

/** A repeated option (`--key text...`) may be given no times: say so as for other optional options. */
export const bracketRepeated = (usage: string): string => usage.replace(/(^|\s)(?!\[)(--[\w-]+ [\w<>|-]+\.\.\.)/g, "$1[$2]")

export const tidyHelp = (text: string, color: boolean): string => {
  const plain = color ? text : text.replace(ANSI, "")
  const lines = plain.split("\n")
  const out: string[] = []
  for (const line of lines) {
    const bare = line.replace(ANSI, "").trim()
    if (FILLER.has(bare)) {
      // The blank line that separated the filler from what came before goes with it.
      if (out.length > 0 && out[out.length - 1]!.trim() === "") out.pop()
      continue
    }
    const usage = /^\$ (.*)$/.exec(line)
    if (usage !== null) {
      out.push(`$ ${bracketRepeated(usage[1]!.startsWith("warden") ? usage[1]! : `warden ${usage[1]}`)}`)
      continue
    }
    // The command list pads each usage to the widest one: one command to a line, its description under it.
    const listed = /^ {2}- (\S.*?)\s{2,}(\S.*)$/.exec(line)
    if (listed !== null) {
      out.push(`  warden ${bracketRepeated(listed[1]!)}`, `      ${listed[2]}`)
      continue
    }
    out.push(line)
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n")
}

/** A parse error's text as one line: `Expected to find option: '--repo'` paragraphs joined. */
export const errorLine = (text: string): string =>
  text
    .replace(ANSI, "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join("; ")

/** The closest of `names` to a mistyped one (at most two edits away), for "did you mean". */
export const closest = (typed: string, names: ReadonlyArray<string>): string | null => {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j)
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0]!
      row[0] = i
      for (let j = 1; j <= b.length; j++) {
        const current = row[j]!
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
        previous = current
      }
    }
    return row[b.length]!
  }
  const ranked = names.map((name) => ({ name, d: distance(typed, name) })).sort((x, y) => x.d - y.d)
  return ranked[0] !== undefined && ranked[0].d <= 2 ? ranked[0].name : null
}


/**
 * @effect/cli's parse errors, said with the option they are about (it names neither the option of a bad
 * value nor a close option for an unknown one): `--format png` gives `--format must be one of svg, json,
 * mermaid, not "png"`, `--at abc` gives `--at must be an integer, not "abc"`, `--jsn` gives `unknown
 * option --jsn (did you mean --json?)`. `usage` is the command's usage line, which lists its options
 * (`--format svg | json | mermaid`, `--at integer`); a message it cannot place is returned as it is.
 */
export const explainParseError = (message: string, argv: ReadonlyArray<string>, usage: string): string => {
  const options = [...new Set([...usage.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]))]
  const typed = (option: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!
      if (arg.startsWith(`${option}=`)) return arg.slice(option.length + 1)
      if (arg === option) return argv[i + 1]
    }
    return undefined
  }
  const unknown = /^Received unknown argument: '(.*)'$/.exec(message)
  if (unknown !== null && unknown[1]!.startsWith("--")) {
    const given = unknown[1]!.split("=")[0]!
    const guess = closest(given, options)
    return `unknown option ${given}${guess === null ? "" : ` (did you mean ${guess}?)`}`
  }
  const cases = /^Expected one of the following cases: (.+)$/.exec(message)
  if (cases !== null) {
    const allowed = cases[1]!.split(", ")
    for (const choice of usage.matchAll(/(--[a-z][a-z-]*) ((?:[\w-]+ \| )+[\w-]+)/g)) {
      const value = typed(choice[1]!)
      if (value !== undefined && !allowed.includes(value) && choice[2]!.split(" | ").join(", ") === cases[1]) {
        return `${choice[1]} must be one of ${allowed.join(", ")}, not ${JSON.stringify(value)}`
      }
    }
  }
  const notInteger = /^'(.*)' is not a integer$/.exec(message)
  if (notInteger !== null) {
    for (const option of usage.matchAll(/(--[a-z][a-z-]*) integer/g)) {
      if (typed(option[1]!) === notInteger[1]) return `${option[1]} must be an integer, not ${JSON.stringify(notInteger[1])}`
    }
    return `${JSON.stringify(notInteger[1])} is not an integer`
  }
  return message
}
