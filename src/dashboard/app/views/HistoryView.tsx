import { useEffect, useState } from "preact/hooks"
import { getJson, messageOf } from "../api.js"
import { sessionHref } from "../route.js"
import { useDashboard } from "../store.js"
import type { HistoryAnswer, HistoryGroup } from "../types.js"
import { BarChart } from "./Charts.js"
import { duration, money } from "./format.js"

const passRateBars = (groups: ReadonlyArray<HistoryGroup>) =>
  groups.map((group) => ({ label: group.name, value: group.pass_rate, text: `${Math.round(group.pass_rate * 100)}% of ${group.runs}` }))

const Memory = () => {
  // null: the daemon's today (its memory files are named by the server's local date).
  const [date, setDate] = useState<string | null>(null)
  const [memory, setMemory] = useState<{ date: string; text: string; dates: ReadonlyArray<string> } | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    setProblem(null)
    getJson<{ date: string; text: string; dates: string[] }>(date === null ? "/v1/memory" : `/v1/memory?date=${date}`).then((answer) => {
      setMemory(answer)
      setDate(answer.date)
    }, (error) => setProblem(messageOf(error)))
  }, [date])
  const dates = [...new Set([...(date === null ? [] : [date]), ...(memory?.dates ?? [])])].sort().reverse()
  return (
    <section class="panel">
      <div class="bar">
        <h2>Memory</h2>
        <select aria-label="day" value={date ?? ""} onChange={(e) => setDate((e.currentTarget as HTMLSelectElement).value)}>
          {dates.map((d) => (
            <option value={d}>{d}</option>
          ))}
        </select>
      </div>
      {problem === null ? null : <p class="refusal">{problem}</p>}
      {memory === null ? null : memory.text === "" ? <p class="muted">No notes that day.</p> : <pre class="screen memory">{memory.text}</pre>}
    </section>
  )
}

export const HistoryView = () => {
  const dashboard = useDashboard()
  const [history, setHistory] = useState<HistoryAnswer | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  // Fetched on opening the view, and again when a session finishes (the feed's records.written changes a row's result).
  const finished = [...dashboard.sessions.values()].filter((row) => row.result !== null).length
  useEffect(() => {
    getJson<HistoryAnswer>("/v1/history").then(setHistory, (error) => setProblem(messageOf(error)))
  }, [finished])
  const runs = history?.runs ?? []
  const cost = runs.reduce<number | null>((sum, run) => (run.cost_usd === null ? sum : (sum ?? 0) + run.cost_usd), null)
  return (
    <section class="view" data-view="history">
      <h1>History</h1>
      {problem === null ? null : <p class="refusal">{problem}</p>}
      {history === null ? null : (
        <>
          <div class="charts">
            <BarChart title="Pass rate by profile" bars={passRateBars(history.by_profile)} max={1} />
            <BarChart title="Pass rate by template" bars={passRateBars(history.by_template)} max={1} />
            <BarChart
              title="Mean duration by profile"
              bars={history.by_profile.map((group) => ({ label: group.name, value: group.mean_duration_seconds ?? 0, text: duration(group.mean_duration_seconds) }))}
            />
            <BarChart
              title="Latest runs' durations"
              bars={runs.slice(0, 12).map((run) => ({ label: run.bead, value: run.duration_seconds ?? 0, text: `${duration(run.duration_seconds)} ${run.outcome ?? run.status}` }))}
            />
          </div>
          <p>
            {runs.length} finished runs; cost when known: <strong>{money(cost)}</strong>
          </p>
          <ul class="rows">
            {runs.map((run) => (
              <li class="row" data-bead={run.bead}>
                <a class="bead" href={sessionHref(run.bead)}>
                  {run.bead}
                </a>
                <span class={`state s-${run.outcome ?? run.status}`} title={`the seed's status: ${run.status}`}>{run.outcome ?? run.status}</span>
                <dl>
                  <dt>profile</dt>
                  <dd>{run.profile}</dd>
                  <dt>template</dt>
                  <dd>{run.template ?? "–"}</dd>
                  <dt>attempt</dt>
                  <dd>{run.attempt}</dd>
                  <dt>duration</dt>
                  <dd>{duration(run.duration_seconds)}</dd>
                  <dt>cost</dt>
                  <dd>{money(run.cost_usd)}</dd>
                </dl>
              </li>
            ))}
          </ul>
        </>
      )}
      <Memory />
    </section>
  )
}
