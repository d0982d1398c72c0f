import { useEffect, useState } from "preact/hooks"
import { getJson, messageOf, post } from "../api.js"
import { refreshSession, useDashboard } from "../store.js"
import { marksAt } from "../../../viz/marks.js"
import { type DecisionRecord, FINAL_STATES, type ReplayStep, type RunRecord, type StepDecision } from "../types.js"
import { clock, elapsed, topState } from "./format.js"
import { useNow } from "./SessionsView.js"
import { Statechart } from "./Statechart.js"
import { LiveTerminal } from "./Terminal.js"

/** A decision's evidence as the operator reads it: its screen lines, then whatever else it holds (the payload). */
export const Evidence = ({ detail }: { detail: unknown }) => {
  if (detail === null || detail === undefined) return null
  const record = typeof detail === "object" ? (detail as Record<string, unknown>) : { value: detail }
  const lines = Array.isArray(record.lines) ? (record.lines as unknown[]) : Array.isArray(record.screen) ? (record.screen as unknown[]) : null
  const rest = Object.fromEntries(Object.entries(record).filter(([key]) => !(lines !== null && (key === "lines" || key === "screen"))))
  return (
    <div class="evidence">
      {lines === null ? null : <pre class="screen">{lines.map(String).join("\n")}</pre>}
      {Object.keys(rest).length === 0 ? null : <pre class="payload">{JSON.stringify(rest, null, 2)}</pre>}
    </div>
  )
}

const Decision = ({ decision, label }: { decision: DecisionRecord | StepDecision; label: string }) => (
  <div class="decision">
    <div>
      <strong>{label}:</strong> {decision.kind} by <code>{decision.source}</code> at {clock(decision.at)}
    </div>
    <Evidence detail={decision.detail} />
  </div>
)

const Why = ({ run }: { run: RunRecord }) => (
  <section class="panel why">
    <h2>Why</h2>
    {run.completion === null ? <p class="muted">No decision has ended this attempt yet.</p> : <Decision decision={run.completion} label="completion" />}
    {run.failure_reason === null ? null : (
      <p>
        failure reason: <code>{run.failure_reason}</code>
      </p>
    )}
    {run.evidence.length > 1 ? (
      <details>
        <summary>every decision of this attempt ({run.evidence.length})</summary>
        {run.evidence.map((decision) => (
          <Decision decision={decision} label="decision" />
        ))}
      </details>
    ) : null}
    <h3>Verification</h3>
    {run.verification === null ? (
      <p class="muted">Not verified.</p>
    ) : (
      <div>
        <p>
          overall: <strong>{run.verification.overall}</strong> {run.verification.diff_stat === "" ? null : <code>{run.verification.diff_stat}</code>}
        </p>
        {run.verification.checks.map((check) => (
          <details>
            <summary>
              {check.name}: {check.status} ({check.duration_ms} ms{check.exit_code === null ? "" : `, exit ${check.exit_code}`})
            </summary>
            <pre class="screen">{check.output_tail || check.detail}</pre>
          </details>
        ))}
      </div>
    )}
    <h3>Earlier attempts</h3>
    {run.previous_attempts.length === 0 ? (
      <p class="muted">None.</p>
    ) : (
      <ul class="attempts">
        {run.previous_attempts.map((attempt) => (
          <li>
            attempt {attempt.attempt}: <strong>{attempt.outcome}</strong>
            {attempt.failure_reason === null ? "" : ` (${attempt.failure_reason})`}
            {attempt.completion === null ? null : <Decision decision={attempt.completion} label="completion" />}
          </li>
        ))}
      </ul>
    )}
    <p>
      <a class="button" href={`/v1/sessions/${encodeURIComponent(run.bead)}/transcript`} download>
        Download the transcript
      </a>
    </p>
  </section>
)


const Replay = ({ steps, at, setAt }: { steps: ReadonlyArray<ReplayStep>; at: number; setAt: (n: number | null) => void }) => {
  const step = steps[at - 1]
  if (step === undefined) return null
  return (
    <div class="replay" data-step={at}>
      <div class="bar">
        <button onClick={() => setAt(Math.max(1, at - 1))} disabled={at <= 1} aria-label="step back">
          ◀ Back
        </button>
        <span data-field="step">
          step {at} of {steps.length}
        </span>
        <button onClick={() => setAt(Math.min(steps.length, at + 1))} disabled={at >= steps.length} aria-label="step forward">
          Forward ▶
        </button>
        <button class="quiet" onClick={() => setAt(null)}>
          Leave replay
        </button>
      </div>
      <p class="step-event">
        attempt {step.attempt}: <code>{step.event.label}</code> → <strong>{step.states[step.states.length - 1] ?? "?"}</strong> at {clock(step.event.at ?? step.at)}
        {step.event.source === null ? "" : ` from ${step.event.source}`}
      </p>
      {step.decisions.map((decision) => (
        <Decision decision={decision} label={decision.completion ? "completion" : "decision"} />
      ))}
    </div>
  )
}

export const SessionView = ({ bead }: { bead: string }) => {
  const dashboard = useDashboard()
  const now = useNow()
  const row = dashboard.sessions.get(bead)
  const [run, setRun] = useState<RunRecord | null>(null)
  // The record's answer: `asking` until it comes, `missing` on a 404, `refused` on another error (in the banner).
  const [asked, setAsked] = useState<"asking" | "found" | "missing" | "refused">("asking")
  const [steps, setSteps] = useState<ReadonlyArray<ReplayStep>>([])
  const [problem, setProblem] = useState<string | null>(null)
  const [replayAt, setReplayAt] = useState<number | null>(null)
  const [actionProblem, setActionProblem] = useState<string | null>(null)

  const load = () => {
    void refreshSession(bead).then((record) => {
      if (record === "missing") setAsked("missing")
      else if (record === null) setAsked("refused")
      else {
        setRun(record)
        setAsked("found")
      }
    })
    getJson<{ steps: ReplayStep[] }>(`/v1/sessions/${encodeURIComponent(bead)}/history`).then(
      (answer) => setSteps(answer.steps),
      (error) => setProblem(`history: ${messageOf(error)}`)
    )
  }
  useEffect(load, [bead])
  // The row's record is kept fresh by the feed (records.written).
  const record = row?.record ?? run
  const state = row?.state ?? record?.lifecycle_state ?? "unknown"
  const finished = FINAL_STATES.has(topState(state))
  // Once the session ends, its history is whole: load it again for the replay.
  useEffect(() => {
    if (finished) load()
  }, [finished])

  const live = dashboard.machines.get(`session:${bead}`)
  const lastStep = steps[steps.length - 1]
  let marks: { current: ReadonlyArray<string>; visited: ReadonlySet<string> }
  const marksOf = (n: number) => {
    const { current, visited } = marksAt(steps, n)
    return { current: [...current], visited }
  }
  if (replayAt !== null) marks = marksOf(replayAt)
  else if (live !== undefined && (lastStep === undefined || live.at >= lastStep.at)) {
    const visited = new Set(marksAt(steps, steps.length).visited)
    for (const id of lastStep?.states ?? []) visited.add(id)
    for (const id of live.visited) visited.add(id)
    for (const id of live.current) visited.delete(id)
    marks = { current: live.current, visited }
  } else marks = marksOf(steps.length)

  // Until the daemon is known to hold this bead (a row, a queue item or a record), show no controls and open no terminal.
  if (row === undefined && record === null) {
    const unknown = asked === "missing" && dashboard.listed
    return (
      <section class="view" data-view="session" data-bead={bead} data-known={unknown ? "no" : "asking"}>
        <div class="bar">
          <a href="#/sessions" class="button quiet">
            ← Sessions
          </a>
          <h1>{bead}</h1>
        </div>
        <p class={unknown ? "panel unknown-bead" : "muted"}>
          {unknown ? `No bead ${bead} in this workspace.` : asked === "refused" ? `The daemon's record of ${bead} cannot be read.` : `Asking the daemon for ${bead}…`}
        </p>
      </section>
    )
  }

  const act = (verb: "cancel" | "retry") => {
    setActionProblem(null)
    post(`/v1/sessions/${encodeURIComponent(bead)}/${verb}`).catch((error) => setActionProblem(messageOf(error)))
  }

  return (
    <section class="view" data-view="session" data-bead={bead}>
      <div class="bar">
        <a href="#/sessions" class="button quiet">
          ← Sessions
        </a>
        <h1>{bead}</h1>
        <span class={`state s-${topState(state)}`} data-field="state">
          {state}
        </span>
        {finished ? (
          <button onClick={() => act("retry")}>Retry</button>
        ) : (
          <button class="danger" onClick={() => act("cancel")}>
            Cancel
          </button>
        )}
      </div>
      {actionProblem === null ? null : <p class="refusal">{actionProblem}</p>}
      {problem === null ? null : <p class="refusal">{problem}</p>}
      <dl class="facts">
        <dt>profile</dt>
        <dd>{row?.profile ?? record?.profile ?? "–"}</dd>
        <dt>attempt</dt>
        <dd>{record === null ? (row?.attempt ?? "–") : `${record.attempt} of ${record.max_retries}`}</dd>
        <dt>elapsed</dt>
        <dd>{elapsed(row?.startedAt ?? null, row?.finishedAt ?? null, now)}</dd>
        <dt>result</dt>
        <dd>{row?.result ?? "–"}</dd>
        <dt>repo</dt>
        <dd>
          <code>{record?.repo ?? "–"}</code>
        </dd>
      </dl>
      {finished ? null : (
        <section class="panel">
          <h2>Terminal</h2>
          <LiveTerminal bead={bead} />
        </section>
      )}
      <section class="panel">
        <div class="bar">
          <h2>Statechart</h2>
          {replayAt === null && finished && steps.length > 0 ? (
            <button onClick={() => setReplayAt(1)} data-action="replay">
              Replay
            </button>
          ) : null}
        </div>
        {replayAt === null ? null : <Replay steps={steps} at={replayAt} setAt={setReplayAt} />}
        <Statechart machine="agentSession" current={marks.current} visited={marks.visited} stamp={replayAt === null ? "live" : `step ${replayAt}`} />
      </section>
      {record === null ? null : <Why run={record} />}
      {record?.output_summary ? (
        <section class="panel">
          <h2>Last screen</h2>
          <pre class="screen">{record.output_summary}</pre>
        </section>
      ) : null}
      {record === null ? null : (
        <section class="panel" data-panel="records">
          <h2>Records</h2>
          <details>
            <summary>
              The run record (<code>state/runs/{bead}.json</code>, as <code>warden show {bead} --json</code> gives it)
            </summary>
            <pre class="screen">{JSON.stringify(record, null, 2)}</pre>
          </details>
        </section>
      )}
    </section>
  )
}
