import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import client from "prom-client"
import { removeStaleTemps } from "../records/staleTemps.js"
import { runnerOf } from "../sessions/effectRunner.js"
import { Daemon, type DaemonEvents, type DaemonServices } from "./daemon.js"
import { DaemonOperations, operationsFromDaemon } from "./operations.js"
import { ApiToken, DaemonSettings, QuarantinedState, WorkspaceLock } from "./resources.js"
import { SnapshotSaver } from "./snapshotPersistence.js"
import { argusLogic, argusPolicy } from "./argusActors.js"
import { statelyInspection } from "./statelyInspection.js"
import type { EffectRunner } from "../sessions/effectRunner.js"
import type { Terminals } from "../terminals/Terminals.js"
import { serviceChildLogic, servicePolicy, stopServicesWithDaemon } from "../services/serviceActors.js"
import type { ServiceProcesses } from "../services/ServiceProcesses.js"
import type { HealthProbes } from "../services/HealthProbes.js"
import type { SystemdUnits } from "../services/SystemdUnits.js"
import { Notifier } from "../services/Notifier.js"
import { missingKey, type ArgusAdvisor } from "../argus/ArgusAdvisor.js"

/** Where the daemon reports what happens: the feed's streams, provided by the server's feed layer (or a test's list). */
export class DaemonEventSink extends Context.Tag("warden/DaemonEventSink")<DaemonEventSink, { readonly publish: DaemonEvents }>() {}

/** The supervisor runtime: the actor tree and its observer, on the process's one runtime. */
export class Supervision extends Context.Tag("warden/Supervision")<Supervision, Daemon>() {}

/**
 * Builds the actor tree once the workspace is the daemon's (its lock held, its
 * corrupt state files moved aside), with the stores and services of the one
 * runtime the layers make; at its end, the tree stops and the agents run on in
 * tmux for the next start. Restoring the sessions is the caller's step (after
 * the API serves, so a client can watch it happen).
 */
export const supervisionLayer = Layer.scoped(
  Supervision,
  Effect.gen(function* () {
    const settings = yield* DaemonSettings
    yield* WorkspaceLock
    const quarantined = yield* QuarantinedState
    const sink = yield* DaemonEventSink
    const runtime = yield* Effect.runtime<DaemonServices | ServiceProcesses | HealthProbes | SystemdUnits | Notifier | ArgusAdvisor>()
    const files = settings.paths.daemon
    for (const file of removeStaleTemps([files.snapshots, path.dirname(files.queue), settings.paths.runs, settings.paths.results])) {
      settings.log("removed a temporary file a killed process left", { file })
    }
    const persistence = yield* SnapshotSaver
    const runner = runnerOf(runtime)
    const services = settings.config.services
    // An alert goes out on every configured channel; a channel that fails is logged, never fatal.
    const alert = (problem: string, text: string) =>
      void runner
        .runPromise(Effect.flatMap(Notifier, (notifier) => notifier.notify({ problem, text, at: Date.now() })))
        .then((deliveries) => {
          for (const d of deliveries) if (!d.ok) settings.log("alert not delivered", { problem, channel: d.channel, reason: d.detail })
        })
    // Stately's inspector, when configured: loaded only then, stopped with the tree.
    const url = settings.config.statelyInspector?.url
    const stately = url === undefined ? null : yield* Effect.promise(() => statelyInspection(url, settings.log))
    if (stately !== null) yield* Effect.addFinalizer(() => Effect.sync(() => stately.stop()))
    const daemon = new Daemon({ ...settings, events: sink.publish, alert, ...(stately === null ? {} : { inspection: stately.inspect }) }, runner, persistence, quarantined, {
      logic: serviceChildLogic(runner, services, settings.paths),
      policyOf: (_name, config) => ({ ...servicePolicy(config) }),
      stopWithDaemon: (running) => stopServicesWithDaemon(runner, services, settings.paths, running)
    }, settings.config.argus.enabled ? argusFor(runner, settings) : null)
    yield* Effect.addFinalizer(() => Effect.promise(() => daemon.stop()))
    return daemon
  })
)

/** Argus, as the config enables it: its policy (the allowlist's facts) fixed at start, its logic made from the daemon's world. */
const argusFor = (
  runner: EffectRunner<Terminals | ArgusAdvisor>,
  settings: { readonly config: Parameters<typeof argusPolicy>[0]; readonly paths: Parameters<typeof argusLogic>[2]; readonly log: (message: string) => void }
) => {
  const policy = argusPolicy(settings.config)
  const llm = settings.config.argus.llm
  // Said once at start rather than only in each cycle's `decider`: until then a calm machine never asks the model.
  if (settings.config.argus.decider === "llm" && llm.via === "messages-api" && (process.env[llm.apiKeyEnv] ?? "") === "") settings.log(`argus: ${missingKey(llm)}; the rules decide until then`)
  return { logic: (world: Parameters<typeof argusLogic>[1]) => argusLogic(runner, world, settings.paths, policy), input: { policy } }
}

/** The daemon's Prometheus metrics: the process's defaults and the tree's sessions and slots. */
const daemonMetrics = (daemon: Daemon) => {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry, prefix: "warden_" })
  new client.Gauge({
    name: "warden_sessions",
    help: "Session actors the daemon supervises",
    registers: [registry],
    collect() {
      this.set(daemon.sessions.size)
    }
  })
  new client.Gauge({
    name: "warden_slots_in_use",
    help: "Sessions holding a concurrency slot",
    registers: [registry],
    collect() {
      this.set(daemon.supervisor.getSnapshot().context.running.length)
    }
  })
  return async () => ({ contentType: registry.contentType, body: await registry.metrics() })
}

/** What the API may ask of the daemon, with the token it must be asked with. */
export const operationsLayer = Layer.effect(
  DaemonOperations,
  Effect.gen(function* () {
    const daemon = yield* Supervision
    const token = yield* ApiToken
    return operationsFromDaemon(daemon, token.value, daemonMetrics(daemon))
  })
)
