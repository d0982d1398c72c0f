/**
 * Wakes Argus when a session has stalled, or waited for input, too long: an important event, so Argus
 * looks then rather than at its next interval. One timer per bead, for the state it is in now; a new
 * state (or the session's end) cancels it.
 */
export class StallWatch {
  private readonly watched = new Map<string, { readonly state: string; readonly timer: NodeJS.Timeout }>()

  constructor(
    /** How long a session may stay stalled or waiting before Argus is woken (Argus's rules alert from the same age). */
    private readonly afterMs: number,
    private readonly wake: (bead: string, state: string) => void
  ) {}

  /** The bead's state now: a stalled or waiting one starts its timer (once per entry), any other cancels it. */
  note(bead: string, state: string): void {
    const current = this.watched.get(bead)
    if (current?.state === state) return
    this.forget(bead)
    if (state !== "running.stalled" && state !== "running.waitingInput") return
    const timer = setTimeout(() => {
      this.watched.delete(bead)
      this.wake(bead, state)
    }, this.afterMs)
    timer.unref()
    this.watched.set(bead, { state, timer })
  }

  forget(bead: string): void {
    const current = this.watched.get(bead)
    if (current === undefined) return
    clearTimeout(current.timer)
    this.watched.delete(bead)
  }

  close(): void {
    for (const bead of [...this.watched.keys()]) this.forget(bead)
  }
}
