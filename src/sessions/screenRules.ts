/**
 * Reading an agent's screen: the last resort among completion sources, kept
 * in one place so each profile's patterns can be tested against screens
 * captured from the real programs (`test/fixtures/`).
 */

export interface ScreenRules {
  /** Patterns that mean a dialog or question waits for an answer (searched in the screen's last lines). */
  readonly waiting: ReadonlyArray<RegExp>
  /** The agent's own idle prompt, tested against the last non-empty line only. */
  readonly idlePrompt: RegExp | null
}

export type ScreenReading =
  | { readonly kind: "dialog"; readonly text: string; readonly tail: ReadonlyArray<string> }
  | { readonly kind: "idle"; readonly tail: ReadonlyArray<string> }
  | { readonly kind: "busy"; readonly tail: ReadonlyArray<string> }

/** How many of the screen's last non-empty lines a dialog is looked for in (a TUI dialog box is tall). */
export const DIALOG_LINES = 15

export const nonEmptyTail = (screen: ReadonlyArray<string>, count: number): string[] =>
  screen.filter((line) => line.trim() !== "").slice(-count)

export const compileRules = (waitingPatterns: ReadonlyArray<string>, idlePrompt: string | null | undefined): ScreenRules => ({
  waiting: waitingPatterns.map((pattern) => new RegExp(pattern, "m")),
  idlePrompt: idlePrompt === null || idlePrompt === undefined ? null : new RegExp(idlePrompt)
})

/** A dialog first (it may sit above an idle-looking prompt), then the idle prompt on the last line. */
export const readScreen = (screen: ReadonlyArray<string>, rules: ScreenRules): ScreenReading => {
  const tail = nonEmptyTail(screen, DIALOG_LINES)
  for (const pattern of rules.waiting) {
    const line = tail.find((candidate) => pattern.test(candidate))
    if (line !== undefined) return { kind: "dialog", text: line.trim(), tail }
  }
  const last = tail[tail.length - 1] ?? ""
  if (rules.idlePrompt !== null && rules.idlePrompt.test(last)) return { kind: "idle", tail }
  return { kind: "busy", tail }
}

/** Whether a program shows it is ready to read: the pattern on one of the last lines. */
export const screenShows = (screen: ReadonlyArray<string>, pattern: RegExp, lines = 10): boolean =>
  nonEmptyTail(screen, lines).some((line) => pattern.test(line))
