import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { fromCallback, fromPromise } from "xstate"
import { serviceMachine, type ServicePolicy } from "../../machines/service.machine.js"
import type { ServiceConfig } from "../config/schema.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import type { ServiceError } from "./serviceErrors.js"
import type { SystemdError } from "./systemdErrors.js"
import { HealthProbes } from "./HealthProbes.js"
import { ServiceProcesses } from "./ServiceProcesses.js"
import { SystemdUnits } from "./SystemdUnits.js"

/** What the service actors run effects with (the daemon's runtime). */
export interface ServiceRunner {
  runPromise<A, E>(effect: Effect.Effect<A, E, ServiceProcesses | HealthProbes | SystemdUnits>, options?: { readonly signal?: AbortSignal }): Promise<A>
}

/** Where a service's output and its pid record live: `state/services/<name>.log` and `.json`. */
export const serviceFiles = (paths: WorkspacePaths, name: string) => {
  const dir = path.join(paths.root, "state", "services")
  return { dir, log: path.join(dir, `${name}.log`), record: path.join(dir, `${name}.json`) }
}

/** The pid of a running service and its start time, kept so a daemon that died uncleanly finds what it left. */
interface PidRecord {
  readonly pid: number
  readonly startTicks: number | null
  readonly startedAt: number
}

const readPidRecord = (file: string): PidRecord | null => {
  try {
    const record = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<PidRecord>
    return typeof record.pid === "number" && Number.isInteger(record.pid) && record.pid > 1
      ? { pid: record.pid, startTicks: typeof record.startTicks === "number" ? record.startTicks : null, startedAt: Number(record.startedAt ?? 0) }
      : null
  } catch {
    // No record (the service never ran, or stopped cleanly) or a torn one: nothing of it is known to run.
    return null
  }
}

/** A service's policy, the service machine's input, from its config. */
export const servicePolicy = (config: ServiceConfig): ServicePolicy => ({
  mode: config.mode,
  backoffInitialMs: config.restart.backoffInitialMs,
  backoffFactor: config.restart.backoffFactor,
  backoffMaxMs: config.restart.backoffMaxMs,
  maxRestarts: config.restart.maxRestarts,
  withinSeconds: config.restart.withinSeconds,
  healthyResetMs: config.restart.healthyResetMs,
  preventRestartExitCodes: config.preventRestartExitCodes,
  hasHealthCheck: config.health !== undefined,
  unhealthyAfter: config.health?.unhealthyAfter ?? 3
})

/**
 * The service machine's effects, for every configured service (each actor
 * finds its service's config by the name in its input). Process mode runs
 * the program in its own process group, its output in its log; systemd mode
 * drives the unit through `systemctl`. Actors return data, never reject.
 */
export const serviceChildLogic = (runtime: ServiceRunner, services: Readonly<Record<string, ServiceConfig>>, paths: WorkspacePaths) => {
  const configOf = (name: string): ServiceConfig => {
    const config = services[name]
    if (config === undefined) throw new Error(`no service ${name} is configured`)
    return config
  }
  return serviceMachine.provide({
    actors: {
      launch: fromPromise(({ input, signal }) => {
        const config = configOf(input.name)
        const files = serviceFiles(paths, input.name)
        type Launched = Effect.Effect<{ ok: true; pid: number; at: number }, ServiceError | SystemdError, ServiceProcesses | SystemdUnits>
        const launched: Launched =
          config.mode === "systemd"
            ? Effect.gen(function* () {
                const units = yield* SystemdUnits
                // A unit that runs is watched as it is; only one that does not is started.
                const before = yield* units.show(config.unit!)
                if (before.activeState === "active" || before.activeState === "activating") return { ok: true as const, pid: before.mainPid ?? 0, at: Date.now() }
                // The first launch starts the unit; the policy's later ones restart it (`systemctl restart`, which
                // also clears a failed unit's state), always after `terminate` saw it stopped.
                yield* input.attempt > 1 ? units.restart(config.unit!) : units.start(config.unit!)
                const shown = yield* units.show(config.unit!)
                return { ok: true as const, pid: shown.mainPid ?? 0, at: Date.now() }
              })
            : Effect.gen(function* () {
                const processes = yield* ServiceProcesses
                // What an earlier daemon left running (its pid and start time in the record): a detached service is
                // adopted as it runs; any other is a leftover of a daemon that died uncleanly, stopped before a new one starts.
                const left = readPidRecord(files.record)
                if (left !== null && processes.alive(left.pid, left.startTicks)) {
                  if (config.detach) return { ok: true as const, pid: left.pid, at: Date.now() }
                  yield* processes.stop(left.pid, config.stopGraceMs)
                }
                fs.mkdirSync(files.dir, { recursive: true })
                const started = yield* processes.start({
                  name: input.name,
                  command: config.command!,
                  args: config.args,
                  cwd: config.cwd ?? paths.root,
                  env: config.env,
                  logFile: files.log,
                  logMaxBytes: config.logMaxBytes
                })
                writeFileAtomic(files.record, JSON.stringify({ pid: started.pid, startTicks: started.startTicks, startedAt: Date.now() }))
                return { ok: true as const, pid: started.pid, at: Date.now() }
              })
        return runtime.runPromise(
          launched.pipe(Effect.catchAll((error) => Effect.succeed({ ok: false as const, error: error.message, at: Date.now() }))),
          { signal }
        )
      }),
      watch: fromCallback(({ input, sendBack }) => {
        const config = configOf(input.name)
        const abort = new AbortController()
        const waited =
          config.mode === "systemd"
            ? Effect.gen(function* () {
                const units = yield* SystemdUnits
                for (;;) {
                  yield* Effect.sleep("2 seconds")
                  const shown = yield* units.show(config.unit!).pipe(Effect.option)
                  if (shown._tag === "Some" && (shown.value.activeState === "active" || shown.value.activeState === "activating")) continue
                  return { code: null, signal: shown._tag === "Some" ? shown.value.result : "unknown" }
                }
              })
            : Effect.flatMap(ServiceProcesses, (processes) => processes.wait(input.pid))
        runtime
          .runPromise(waited, { signal: abort.signal })
          .then((exit) => sendBack({ type: "EXITED", code: exit.code, signal: exit.signal, at: Date.now() }))
          .catch(() => undefined) // interrupted: the state that watched was left
        return () => abort.abort()
      }),
      probe: fromCallback(({ input, sendBack }) => {
        const health = configOf(input.name).health
        if (health === undefined) return () => undefined
        let stopped = false
        const abort = new AbortController()
        const check = () =>
          runtime
            .runPromise(Effect.flatMap(HealthProbes, (probes) => probes.check(health)), { signal: abort.signal })
            .then((result) => {
              if (!stopped) sendBack({ type: "HEALTH", ok: result.ok, detail: result.detail, at: Date.now() })
            })
            .catch(() => undefined) // interrupted with the state that probed
        const timer = setInterval(check, health.intervalSeconds * 1000)
        return () => {
          stopped = true
          clearInterval(timer)
          abort.abort()
        }
      }),
      terminate: fromPromise(({ input }) => {
        const config = configOf(input.name)
        const files = serviceFiles(paths, input.name)
        const stop: Effect.Effect<void, never, ServiceProcesses | SystemdUnits> =
          config.mode === "systemd"
            ? Effect.flatMap(SystemdUnits, (units) => units.stop(config.unit!)).pipe(Effect.ignore)
            : Effect.flatMap(ServiceProcesses, (processes) => {
                // Without a pid (a launch interrupted half way), the record names what it may have started.
                const record = input.pid === null ? readPidRecord(files.record) : null
                const pid = input.pid ?? (record !== null && processes.alive(record.pid, record.startTicks) ? record.pid : null)
                return pid === null ? Effect.void : processes.stop(pid, config.stopGraceMs)
              })
        // Never interrupted: a restart waits until the old process is confirmed gone.
        return runtime.runPromise(
          stop.pipe(
            Effect.zipRight(Effect.sync(() => fs.rmSync(files.record, { force: true }))),
            Effect.as({ at: Date.now() })
          )
        )
      })
    }
  })
}

/**
 * The daemon stops: every process-mode service that is not `detach` stops
 * with it (its whole group); a detached one runs on, its record kept for the
 * next daemon to adopt.
 */
export const stopServicesWithDaemon = (
  runtime: ServiceRunner,
  services: Readonly<Record<string, ServiceConfig>>,
  paths: WorkspacePaths,
  running: ReadonlyArray<{ readonly name: string; readonly pid: number | null }>
): Promise<void> =>
  runtime.runPromise(
    Effect.forEach(
      running,
      ({ name, pid }) => {
        const config = services[name]
        if (config === undefined || config.mode !== "process" || config.detach || pid === null) return Effect.void
        return Effect.flatMap(ServiceProcesses, (processes) => processes.stop(pid, config.stopGraceMs)).pipe(
          Effect.zipRight(Effect.sync(() => fs.rmSync(serviceFiles(paths, name).record, { force: true })))
        )
      },
      { concurrency: "unbounded", discard: true }
    )
  )
