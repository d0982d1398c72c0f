import { useState } from "preact/hooks"
import { messageOf, post } from "../api.js"
import { useDashboard } from "../store.js"
import type { ServiceView } from "../types.js"
import { clock, topState } from "./format.js"

const ServiceRow = ({ service }: { service: ServiceView }) => {
  const [problem, setProblem] = useState<string | null>(null)
  const act = (verb: "restart" | "stop" | "start") => {
    setProblem(null)
    post(`/v1/services/${encodeURIComponent(service.name)}/${verb}`).catch((error) => setProblem(messageOf(error)))
  }
  const exit = service.last_exit === null ? "–" : service.last_exit.signal ?? `exit ${service.last_exit.code}`
  return (
    <li class="row" data-service={service.name} data-state={service.state}>
      <span class="bead">{service.name}</span>
      <span class={`state s-${topState(service.state)}`} data-field="state">
        {service.state}
      </span>
      <dl>
        <dt>mode</dt>
        <dd>{service.mode}</dd>
        <dt>pid</dt>
        <dd>{service.pid ?? "–"}</dd>
        <dt>restarts</dt>
        <dd data-field="restarts">{service.restarts}</dd>
        <dt>last exit</dt>
        <dd data-field="last-exit">{exit}</dd>
        <dt>health</dt>
        <dd>{service.health === null ? "–" : `${service.health.ok ? "ok" : "failing"}: ${service.health.detail}`}</dd>
        <dt>since</dt>
        <dd>{clock(service.since)}</dd>
      </dl>
      <div class="actions">
        <button onClick={() => act("restart")}>Restart</button>
        <button onClick={() => act("stop")}>Stop</button>
        <button onClick={() => act("start")}>Start</button>
        {problem === null ? null : <span class="refusal">{problem}</span>}
      </div>
    </li>
  )
}

export const ServicesView = () => {
  const dashboard = useDashboard()
  const cycles = dashboard.argus.cycles.slice(0, 10)
  return (
    <section class="view" data-view="services">
      <h1>Services</h1>
      {dashboard.services.length === 0 ? <p class="empty">No services are configured.</p> : null}
      <ul class="rows">
        {dashboard.services.map((service) => (
          <ServiceRow service={service} key={service.name} />
        ))}
      </ul>
      <h1>Argus</h1>
      {!dashboard.argus.enabled ? <p class="empty">Argus is not enabled.</p> : cycles.length === 0 ? <p class="empty">No cycle yet.</p> : null}
      <ul class="rows cycles">
        {cycles.map((cycle) => (
          <li class="row cycle">
            <span class="bead">{clock(cycle.at)}</span>
            <span class="muted">decider: {cycle.decider}</span>
            {cycle.assessment === undefined ? null : <p>{cycle.assessment}</p>}
            {cycle.decisions.length === 0 ? <p class="muted">no decision</p> : null}
            <ul class="decisions">
              {cycle.decisions.map((decision) => (
                <li class={/allow|ok|done|approved/.test(decision.verdict) ? "allowed" : "refused"}>
                  <strong>{String(decision.action)}</strong> {decision.target === undefined ? "" : String(decision.target)}: {decision.verdict} ({decision.source}) {decision.reason}
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  )
}
