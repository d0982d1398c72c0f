import { useEffect, useState } from "preact/hooks"
import { getJson, messageOf, post } from "../api.js"
import { sessionHref } from "../route.js"
import { type SessionRow, useDashboard } from "../store.js"
import { FINAL_STATES } from "../types.js"
import { elapsed, topState } from "./format.js"

/** Re-renders every second, for elapsed times (the page's own clock: nothing is fetched). */
export const useNow = (): number => {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [])
  return now
}

const isFinished = (row: SessionRow) => FINAL_STATES.has(topState(row.state))

const Actions = ({ row }: { row: SessionRow }) => {
  const [problem, setProblem] = useState<string | null>(null)
  const act = (verb: "cancel" | "retry") => {
    setProblem(null)
    post(`/v1/sessions/${encodeURIComponent(row.bead)}/${verb}`).catch((error) => setProblem(messageOf(error)))
  }
  return (
    <div class="actions">
      <a class="button" href={sessionHref(row.bead)}>
        Open
      </a>
      {isFinished(row) ? (
        <button onClick={() => act("retry")}>Retry</button>
      ) : (
        <button class="danger" onClick={() => act("cancel")}>
          Cancel
        </button>
      )}
      {problem === null ? null : <span class="refusal">{problem}</span>}
    </div>
  )
}

interface DispatchChoices {
  readonly profiles: ReadonlyArray<{ readonly name: string; readonly runs_command: boolean }>
  readonly templates: ReadonlyArray<string>
}

const DispatchForm = () => {
  const [problem, setProblem] = useState<string | null>(null)
  const [sent, setSent] = useState<string | null>(null)
  // The profiles and templates the daemon knows, offered as suggestions (any text may still be sent: the API names what it refuses).
  const [choices, setChoices] = useState<DispatchChoices>({ profiles: [], templates: [] })
  useEffect(() => {
    getJson<DispatchChoices>("/v1/dispatch/choices").then(setChoices, () => undefined)
  }, [])
  const commandProfiles = choices.profiles.filter((p) => p.runs_command).map((p) => p.name)
  const submit = async (event: Event) => {
    event.preventDefault()
    const form = event.currentTarget as HTMLFormElement
    const fields = new FormData(form)
    const text = (name: string) => {
      const value = String(fields.get(name) ?? "").trim()
      return value === "" ? undefined : value
    }
    const body = {
      bead: text("bead"),
      repo: text("repo"),
      agent: text("agent"),
      priority: Number(fields.get("priority") ?? 2),
      template: text("template"),
      prompt: text("prompt"),
      command: text("command")
    }
    setProblem(null)
    setSent(null)
    try {
      await post("/v1/dispatch", body)
      setSent(`${body.bead} dispatched`)
    } catch (error) {
      setProblem(messageOf(error))
    }
  }
  return (
    <details class="panel dispatch">
      <summary>Dispatch a bead</summary>
      <form onSubmit={(event) => void submit(event)} class="form">
        <label>
          Bead <input name="bead" required placeholder="bd-a1" autocomplete="off" />
        </label>
        <label>
          Repository <input name="repo" required placeholder="/srv/repos/app" autocomplete="off" />
        </label>
        <label>
          Profile <input name="agent" required placeholder="claude" autocomplete="off" list="dispatch-profiles" />
          <datalist id="dispatch-profiles">
            {choices.profiles.map((p) => (
              <option value={p.name} />
            ))}
          </datalist>
        </label>
        <label>
          Priority
          <select name="priority">
            {[0, 1, 2, 3, 4].map((p) => (
              <option value={p} selected={p === 2}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          Template <input name="template" placeholder="(none)" autocomplete="off" list="dispatch-templates" />
          <datalist id="dispatch-templates">
            {choices.templates.map((t) => (
              <option value={t} />
            ))}
          </datalist>
        </label>
        <label class="wide">
          Prompt <textarea name="prompt" rows={3} placeholder="what to do (or a template)" />
        </label>
        <label class="wide">
          Command{" "}
          <input
            name="command"
            placeholder={commandProfiles.length === 0 ? "for a command profile" : `for ${commandProfiles.join(", ")}`}
            autocomplete="off"
          />
        </label>
        <button type="submit" class="primary">
          Dispatch
        </button>
        {problem === null ? null : (
          <p class="refusal" role="alert">
            {problem}
          </p>
        )}
        {sent === null ? null : <p class="ok">{sent}</p>}
      </form>
    </details>
  )
}

export const SessionsView = () => {
  const dashboard = useDashboard()
  const now = useNow()
  const [stateFilter, setStateFilter] = useState("")
  const [profileFilter, setProfileFilter] = useState("")
  const [text, setText] = useState("")
  const [drainProblem, setDrainProblem] = useState<string | null>(null)
  const rows = [...dashboard.sessions.values()].sort((a, b) => (b.startedAt ?? Infinity) - (a.startedAt ?? Infinity) || a.bead.localeCompare(b.bead))
  const states = [...new Set(rows.map((row) => topState(row.state)))].sort()
  const profiles = [...new Set(rows.map((row) => row.profile))].sort()
  const shown = rows.filter(
    (row) =>
      (stateFilter === "" || topState(row.state) === stateFilter) &&
      (profileFilter === "" || row.profile === profileFilter) &&
      (text === "" || `${row.bead} ${row.profile} ${row.state} ${row.result ?? ""}`.toLowerCase().includes(text.toLowerCase()))
  )
  const toggleDrain = () => {
    setDrainProblem(null)
    post("/v1/drain", { on: !dashboard.draining }).catch((error) => setDrainProblem(messageOf(error)))
  }
  return (
    <section class="view" data-view="sessions">
      <div class="bar">
        <h1>Sessions</h1>
        <button class={dashboard.draining ? "toggle on" : "toggle"} aria-pressed={dashboard.draining} onClick={toggleDrain} data-action="drain">
          {dashboard.draining ? "Draining: admit again" : "Drain"}
        </button>
        {drainProblem === null ? null : <span class="refusal">{drainProblem}</span>}
      </div>
      <DispatchForm />
      <div class="filters">
        <select aria-label="state" value={stateFilter} onChange={(e) => setStateFilter((e.currentTarget as HTMLSelectElement).value)}>
          <option value="">every state</option>
          {states.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
        <select aria-label="profile" value={profileFilter} onChange={(e) => setProfileFilter((e.currentTarget as HTMLSelectElement).value)}>
          <option value="">every profile</option>
          {profiles.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
        <input type="search" aria-label="search" placeholder="search" value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
      </div>
      {shown.length === 0 ? <p class="empty">No sessions{rows.length > 0 ? " match" : " yet"}.</p> : null}
      <ul class="rows">
        {shown.map((row) => (
          <li class="row" data-bead={row.bead} data-state={row.state}>
            <a class="bead" href={sessionHref(row.bead)}>
              {row.bead}
            </a>
            <span class={`state s-${topState(row.state)}`} data-field="state">
              {row.state}
            </span>
            <dl>
              <dt>profile</dt>
              <dd>{row.profile}</dd>
              <dt>attempt</dt>
              <dd>{row.attempt ?? "–"}</dd>
              <dt>elapsed</dt>
              <dd>{elapsed(row.startedAt, row.finishedAt, now)}</dd>
              <dt>completion</dt>
              <dd>{row.completionSource ?? "–"}</dd>
              <dt>result</dt>
              <dd data-field="result">{row.result ?? "–"}</dd>
            </dl>
            <Actions row={row} />
          </li>
        ))}
      </ul>
    </section>
  )
}
