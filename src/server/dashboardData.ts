import type { RunRecord } from "../records/recordSchema.js"
import { sessionSystemId } from "../../machines/supervisor.machine.js"
import { machineNamed } from "../viz/machineCatalog.js"
import { renderMachine } from "../viz/render.js"
import { attemptDecisions, parseHistory, replaySteps, type ReplayStep } from "../viz/replay.js"

/**
 * What the dashboard reads besides the records: the machines drawn (as `warden viz` draws them), a
 * session's replay steps, and the finished runs summed up per profile and template. Pure but for the
 * layout (elkjs), whose drawings are kept: a machine's definition does not change while the daemon runs.
 */
const drawings = new Map<string, Promise<string>>()

/** A machine's drawing (`svg`, or `json`: the graph with its layout), or null for a name that is not a machine. */
export const machineDrawing = (name: string, format: "svg" | "json"): Promise<string> | null => {
  const machine = machineNamed(name)
  if (machine === null) return null
  const key = `${name}.${format}`
  let drawing = drawings.get(key)
  if (drawing === undefined) {
    drawing = renderMachine(name, machine, format)
    // A layout that failed is tried again at the next request, not kept.
    drawing.catch(() => drawings.delete(key))
    drawings.set(key, drawing)
  }
  return drawing
}


/** A bead's replay steps from its history and run record, or why they cannot be read. */
export const historySteps = (
  bead: string,
  history: { readonly file: string; readonly text: string },
  run: RunRecord | null
): { readonly ok: true; readonly steps: ReadonlyArray<ReplayStep> } | { readonly ok: false; readonly problem: string } => {
  const events = parseHistory(history.text, history.file)
  if (!events.ok) return events
  const machine = machineNamed("agentSession")!
  const replay = replaySteps(machine, events.value, sessionSystemId(bead), run === null ? new Map() : attemptDecisions(run))
  return replay.ok ? { ok: true, steps: replay.value } : { ok: false, problem: `${history.file}: ${replay.problem}` }
}

export interface RunSummary {
  readonly bead: string
  readonly profile: string
  readonly template: string | null
  readonly status: string
  readonly outcome: string | null
  readonly attempt: number
  readonly duration_seconds: number | null
  readonly cost_usd: number | null
  readonly finished_at: string | null
}

export interface GroupSummary {
  readonly name: string
  readonly runs: number
  readonly done: number
  /** `done` / `runs`, 0 to 1. */
  readonly pass_rate: number
  readonly mean_duration_seconds: number | null
  /** The sum of the runs' known costs, or null when none is known. */
  readonly cost_usd: number | null
}

const group = (runs: ReadonlyArray<RunSummary>, key: (run: RunSummary) => string): GroupSummary[] => {
  const groups = new Map<string, RunSummary[]>()
  for (const run of runs) groups.set(key(run), [...(groups.get(key(run)) ?? []), run])
  return [...groups.entries()]
    .map(([name, members]) => {
      const durations = members.map((m) => m.duration_seconds).filter((d): d is number => d !== null)
      const costs = members.map((m) => m.cost_usd).filter((c): c is number => c !== null)
      const done = members.filter((m) => m.outcome === "done").length
      return {
        name,
        runs: members.length,
        done,
        pass_rate: done / members.length,
        mean_duration_seconds: durations.length === 0 ? null : Math.round(durations.reduce((a, b) => a + b, 0) / durations.length),
        cost_usd: costs.length === 0 ? null : Math.round(costs.reduce((a, b) => a + b, 0) * 1e6) / 1e6
      }
    })
    .sort((a, b) => b.runs - a.runs || a.name.localeCompare(b.name))
}

/** The finished runs (newest first), and their pass rate, mean duration and cost per profile and per template. */
export const runHistory = (records: ReadonlyArray<RunRecord>) => {
  const runs: RunSummary[] = records
    .filter((run) => run.finished_at !== null && run.outcome !== null)
    .map((run) => ({
      bead: run.bead,
      profile: run.profile,
      template: run.template_name,
      status: run.status,
      outcome: run.outcome,
      attempt: run.attempt,
      duration_seconds: run.duration_seconds,
      cost_usd: run.cost_usd,
      finished_at: run.finished_at_precise ?? run.finished_at
    }))
    .sort((a, b) => (b.finished_at ?? "").localeCompare(a.finished_at ?? ""))
  return { runs, by_profile: group(runs, (run) => run.profile), by_template: group(runs, (run) => run.template ?? "(prompt)") }
}
