import type { ObservedRun } from "../sessions/reconcile.js"
import type { ResultRecord, RunRecord } from "../records/recordSchema.js"

const time = (isoText: string | null): string => (isoText === null ? "-" : isoText.replace("T", " ").replace("Z", ""))

/** Pads columns of a table for people; scripts use `--json`. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? []
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n")
}

export const psTable = (observed: ReadonlyArray<ObservedRun>): string => {
  if (observed.length === 0) return "no sessions in this workspace"
  const rows = [["BEAD", "STATUS", "STATE", "AGENT", "ATTEMPT", "STARTED", "NOTE"]]
  for (const { run, liveness, reconciled } of observed) {
    const note =
      liveness === "unsupervised"
        ? `supervisor pid ${run.supervisor.pid} gone; agent still running in tmux ${run.session_name}`
        : liveness === "awaiting-daemon"
          ? `the daemon (pid ${run.supervisor.pid}) is down; its next start re-adopts this session`
        : reconciled
          ? `reconciled now: ${run.failure_reason}`
          : liveness === "supervised"
            ? `${run.supervisor.kind} pid ${run.supervisor.pid}`
            : (run.outcome ?? "")
    rows.push([run.bead, run.status, run.lifecycle_state, run.profile, `${run.attempt}/${run.max_retries}`, time(run.started_at), note])
  }
  return table(rows)
}

const detailText = (detail: unknown): string => {
  if (detail === null || typeof detail !== "object") return ""
  const d = detail as Record<string, unknown>
  const parts: string[] = []
  for (const key of ["reason", "summary", "line", "exitCode"]) {
    if (d[key] !== undefined && d[key] !== null) parts.push(`${key}=${JSON.stringify(d[key])}`)
  }
  if (Array.isArray(d.screen) && d.screen.length > 0) parts.push(`screen=${JSON.stringify((d.screen as string[]).slice(-3))}`)
  return parts.join(" ")
}

/** `warden show`: the states with timestamps, and why the session ended as it did. */
export const showText = (run: RunRecord, result: ResultRecord | null): string => {
  const lines: string[] = []
  lines.push(`bead        ${run.bead}`)
  lines.push(`status      ${run.status}${run.outcome !== null ? ` (outcome ${run.outcome})` : ""}  state ${run.lifecycle_state}`)
  lines.push(`agent       ${run.agent} (profile ${run.profile}, model ${run.model})`)
  lines.push(`attempt     ${run.attempt}/${run.max_retries}  id ${run.attempt_id ?? "-"}`)
  lines.push(`repo        ${run.repo}  base ${run.base_commit ?? "-"}`)
  lines.push(`session     ${run.session_name}  (supervisor ${run.supervisor.kind} pid ${run.supervisor.pid})`)
  lines.push(`why         ${result?.reason ?? "-"}`)
  if (run.completion !== null) {
    lines.push(`decided by  ${run.completion.source} at ${time(run.completion.at)}: ${run.completion.kind} ${detailText(run.completion.detail)}`)
  }
  if (run.final_message !== null) lines.push(`message     ${run.final_message}`)
  lines.push("", "states:")
  for (const entry of run.state_history) lines.push(`  ${time(entry.at)}  #${entry.attempt}  ${entry.state}`)
  if (run.evidence.length > 0) {
    lines.push("", "evidence:")
    for (const d of run.evidence) lines.push(`  ${time(d.at)}  ${d.kind.padEnd(13)} ${d.source.padEnd(12)} ${detailText(d.detail)}`)
  }
  if (run.verification !== null) {
    lines.push("", `verification: ${run.verification.overall}`)
    for (const check of run.verification.checks) lines.push(`  ${check.name.padEnd(10)} ${check.status.padEnd(8)} ${check.detail}`)
    if (run.verification.new_commits.length > 0) lines.push(`  commits: ${run.verification.new_commits.join("; ")}`)
  }
  if (run.previous_attempts.length > 0) {
    lines.push("", "earlier attempts:")
    for (const a of run.previous_attempts) {
      lines.push(`  #${a.attempt} ${a.attempt_id ?? "-"} ${a.outcome} ${a.failure_reason ?? ""} ${a.completion ? `(${a.completion.source}: ${detailText(a.completion.detail)})` : ""}`)
    }
  }
  if (run.ignored_signals.length > 0) {
    lines.push("", "ignored signals:")
    for (const s of run.ignored_signals) lines.push(`  ${time(s.at)}  ${s.reason}`)
  }
  if (run.output_summary !== null) lines.push("", "output summary (last 500 characters of the screen):", run.output_summary)
  lines.push("", `records: ${result?.run_file ?? "-"}  ${run.result_file}`)
  if (run.transcript_path !== null) lines.push(`transcript: ${run.transcript_path}`)
  return lines.join("\n")
}
