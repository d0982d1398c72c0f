/**
 * The attempts that failed lately, by reason, for Argus's observations: each failed attempt (retried or
 * final) is noted once, and only the last `windowMs` are counted. Kept in memory: a restarted daemon
 * starts counting afresh.
 */
export class RecentFailures {
  private noted: Array<{ readonly at: number; readonly reason: string; readonly key: string }> = []

  constructor(private readonly windowMs: number) {}

  /** An attempt failed; `key` (bead and attempt) keeps a snapshot seen twice from counting twice. */
  note(key: string, reason: string, at: number): void {
    if (this.noted.some((n) => n.key === key)) return
    this.noted.push({ at, reason, key })
  }

  /** Failures within the window, counted by reason, most frequent first. */
  byReason(now: number): ReadonlyArray<{ readonly reason: string; readonly count: number }> {
    this.noted = this.noted.filter((n) => now - n.at < this.windowMs)
    const counts = new Map<string, number>()
    for (const n of this.noted) counts.set(n.reason, (counts.get(n.reason) ?? 0) + 1)
    return [...counts.entries()].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason))
  }
}
