import { Effect } from "effect"
import { runningDaemon } from "../daemon/runningDaemon.js"
import type { ServiceView } from "../daemon/serviceSupervision.js"
import { callDaemon } from "./daemonClient.js"
import { CliError, type CliEnvironment } from "./environment.js"

const noDaemon = () => new CliError({ message: "no warden daemon runs for this workspace: services are supervised by `warden daemon`" })

const ago = (iso: string | null): string => {
  if (iso === null) return "-"
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return seconds < 120 ? `${seconds}s` : seconds < 7200 ? `${Math.round(seconds / 60)}m` : `${Math.round(seconds / 3600)}h`
}

const line = (s: ServiceView): string =>
  [
    s.name.padEnd(16),
    s.mode.padEnd(8),
    s.state.padEnd(18),
    String(s.pid ?? "-").padEnd(8),
    String(s.restarts).padEnd(9),
    (s.last_exit === null ? "-" : s.last_exit.signal ?? `exit ${s.last_exit.code}`).padEnd(10),
    (s.health === null ? "-" : s.health.ok ? "ok" : `failing: ${s.health.detail}`).padEnd(24),
    ago(s.since)
  ].join(" ")

/** `warden services [--json]`: the supervised services, as the daemon sees them. */
export const servicesCommand = (env: CliEnvironment, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* noDaemon()
    const answer = (yield* callDaemon(env.paths, daemon, "GET", "/v1/services")) as { services: ReadonlyArray<ServiceView> }
    if (json) return void process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`)
    if (answer.services.length === 0) return void process.stdout.write("no services are configured (services.<name> in the config)\n")
    process.stdout.write(`${["NAME".padEnd(16), "MODE".padEnd(8), "STATE".padEnd(18), "PID".padEnd(8), "RESTARTS".padEnd(9), "LAST EXIT".padEnd(10), "HEALTH".padEnd(24), "SINCE"].join(" ")}\n`)
    for (const service of answer.services) process.stdout.write(`${line(service)}\n`)
  })

/** `warden services restart|stop|start NAME`: the operator's verb, through the daemon. */
export const serviceVerbCommand = (env: CliEnvironment, verb: "restart" | "stop" | "start", name: string, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* noDaemon()
    const view = (yield* callDaemon(env.paths, daemon, "POST", `/v1/services/${encodeURIComponent(name)}/${verb}`, {})) as unknown as ServiceView
    process.stdout.write(json ? `${JSON.stringify(view, null, 2)}\n` : `${name}: ${verb} sent (state ${view.state})\n`)
  })
