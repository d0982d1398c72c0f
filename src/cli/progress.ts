import type { HistoryEntry, SessionView } from "../records/buildRecords.js"

const frames = ["|", "/", "-", "\\"]

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 23)

/** What a state entry means, in a few words, for the progress line. */
export const describeEntry = (view: SessionView, cli = "warden"): string => {
  const c = view.context
  switch (view.state) {
    case "preflight":
      return `attempt ${c.attempt}/${c.policy.retry.maxAttempts}`
    case "launching":
      return `attempt id ${c.attemptId}`
    case "running.working":
      return c.launch?.sessionName ? `in tmux ${c.launch.sessionName}` : ""
    case "running.stalled":
      return `no output for ${Math.round(c.policy.stallMs / 1000)} s`
    case "running.waitingInput":
      return `the agent waits: ${c.waiting?.detail.line ?? c.waiting?.detail.summary ?? "(question)"}  -> answer with: ${cli} send ${c.bead} TEXT`
    case "recording":
      return c.claim ? `${c.claim.kind} by ${c.claim.source}${c.claim.detail.reason ? ` (${c.claim.detail.reason})` : ""}` : ""
    case "cleaning":
      return c.verification
        ? `verification ${c.verification.overall}: ${c.verification.checks.map((k) => `${k.name}=${k.status}`).join(", ")}`
        : (c.failureReason ?? "")
    case "backoff":
      return c.backoffUntil ? `retrying in ${Math.max(0, Math.round((c.backoffUntil - c.now) / 100) / 10)} s` : ""
    default:
      return ""
  }
}

/**
 * Shows a session state by state: plain lines when piped, the same lines
 * plus a spinner line with the elapsed time on a terminal.
 */
export class Progress {
  private timer: NodeJS.Timeout | null = null
  private frame = 0
  private current = ""
  private readonly started = Date.now()

  constructor(
    private readonly bead: string,
    private readonly out: NodeJS.WriteStream = process.stdout,
    /** How to call warden for this workspace in a hint (`warden --workspace DIR` when it is not the default). */
    private readonly cli = "warden"
  ) {}

  get interactive(): boolean {
    return this.out.isTTY === true
  }

  start(): void {
    if (!this.interactive) return
    this.timer = setInterval(() => this.drawSpinner(), 120)
    this.timer.unref()
  }

  state(view: SessionView, entry: HistoryEntry): void {
    this.current = view.state
    const detail = describeEntry(view, this.cli)
    this.line(`${clock(entry.at)}  ${this.bead}  #${entry.attempt}  ${view.state}${detail ? `  ${detail}` : ""}`)
  }

  line(text: string): void {
    if (this.interactive) this.out.write("\r\u001b[K")
    this.out.write(`${text}\n`)
    this.drawSpinner()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.interactive) this.out.write("\r\u001b[K")
  }

  private drawSpinner(): void {
    if (!this.interactive || this.timer === null) return
    this.frame = (this.frame + 1) % frames.length
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(1)
    this.out.write(`\r\u001b[K${frames[this.frame]} ${this.bead} ${this.current} ${elapsed}s`)
  }
}
