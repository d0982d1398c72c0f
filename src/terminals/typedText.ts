/**
 * Text typed into an agent's terminal on someone's behalf (an operator's
 * answer, a coordinator's prompt) is text, never keystrokes: a control
 * character in it would act on the agent's program. ESC starts escape
 * sequences (`ESC[201~` ends a bracketed paste early, so the rest arrives as
 * keys), `\x03` is Ctrl-C, `\x04` ends input; DEL erases; the C1 controls
 * (U+0080..U+009F) are read as ESC sequences by some terminals (U+009B is
 * CSI). Only newline and tab are text. CR and CRLF are line ends written the
 * old way: they are made LF before the check (`normalizeLineEnds`). Named
 * keys (Enter, Escape, C-c, ...) stay available through `sendKeys`.
 */

const C0_NAMES = [
  "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
  "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"
]

/** Control characters that are never typed as text: C0 but newline and tab, DEL, C1. */
const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/u

/** A forbidden character and where it is. */
export interface ControlCharacter {
  /** `U+001B (ESC)` */
  readonly character: string
  /** 1-based position in characters (code points) of the text as given. */
  readonly position: number
}

const describe = (code: number): string => {
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`
  const name = code < 32 ? C0_NAMES[code] : code === 0x7f ? "DEL" : code === 0x9b ? "CSI" : "C1 control"
  return `${hex} (${name})`
}

/** CRLF and lone CR become LF: a line end, whoever wrote it. */
export const normalizeLineEnds = (text: string): string => text.replace(/\r\n?/g, "\n")

/** The first control character `text` may not carry, or null. */
export const findControlCharacter = (text: string): ControlCharacter | null => {
  if (!FORBIDDEN.test(text)) return null
  let position = 0
  for (const ch of text) {
    position++
    if (FORBIDDEN.test(ch)) return { character: describe(ch.codePointAt(0)!), position }
  }
  return null
}

/** Why `text` may not be typed (naming the character and its position), or null. */
export const controlCharacterProblem = (text: string): string | null => {
  const found = findControlCharacter(text)
  return found === null
    ? null
    : `the text holds the control character ${found.character} at character ${found.position}: only newline and tab may be typed as text (press named keys such as Escape or C-c with keys instead)`
}

/** `text` without the control characters it may not carry, line ends made LF (for prompts, which are data). */
export const stripControlCharacters = (text: string): string =>
  normalizeLineEnds(text).replace(new RegExp(FORBIDDEN.source, "gu"), "")
