import { execFile } from "node:child_process"
import { Context, Effect, Layer } from "effect"
import { SystemdError } from "./systemdErrors.js"

/**
 * A systemd service unit as `systemctl show` reports it. The state names are systemd's own
 * (`ActiveState`: active, reloading, inactive, failed, activating, deactivating, ...; `Result`:
 * success, exit-code, signal, core-dump, timeout, watchdog, start-limit-hit, oom-kill, ...),
 * passed through unchanged so a newer systemd's states are not refused.
 */
export interface UnitStatus {
  readonly activeState: string
  readonly subState: string
  /** The main process, or null when systemd reports none (`MainPID=0`). */
  readonly mainPid: number | null
  /** Restarts systemd itself made under the unit's `Restart=` (an operator's restart does not count). */
  readonly nRestarts: number
  readonly result: string
}

/** The verbs Warden may use on a unit: exactly those the shipped polkit rule allows. */
export type UnitVerb = "restart" | "start" | "stop"

/** A plain service unit name: no path, no spaces, no shell metacharacters, and `.service` at the end. */
export const UNIT_NAME = /^[A-Za-z0-9:_.@-]+\.service$/

/** The properties `show` asks for, in the order `systemctl show` prints them (the Service interface first). */
export const SHOWN_PROPERTIES = ["ActiveState", "SubState", "MainPID", "NRestarts", "Result"] as const

/** systemd units Warden supervises in systemd mode, through `systemctl` (argv only, never a shell). */
export class SystemdUnits extends Context.Tag("warden/SystemdUnits")<
  SystemdUnits,
  {
    /** `systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result UNIT`, parsed. */
    readonly show: (unit: string) => Effect.Effect<UnitStatus, SystemdError>
    /** `systemctl restart UNIT`: returns once systemd has finished the restart job. */
    readonly restart: (unit: string) => Effect.Effect<void, SystemdError>
    readonly start: (unit: string) => Effect.Effect<void, SystemdError>
    readonly stop: (unit: string) => Effect.Effect<void, SystemdError>
  }
>() {}

/**
 * Refuses a unit name before anything runs: only `^[A-Za-z0-9:_.@-]+\.service$`, no `..`, and no
 * leading `-` (systemctl would read `-Hhost.service` as its `-H` option and act on another machine).
 */
export const checkUnitName = (unit: string): Effect.Effect<string, SystemdError> =>
  UNIT_NAME.test(unit) && !unit.includes("..") && !unit.startsWith("-")
    ? Effect.succeed(unit)
    : Effect.fail(
        new SystemdError({
          unit,
          reason: "invalid-unit",
          detail: `refused unit name ${JSON.stringify(unit)}: a unit must match ${UNIT_NAME.source} (letters, digits, ":_.@-", ending in ".service", no "..", not starting with "-")`
        })
      )

const integer = (text: string): number | null => (/^\d+$/.test(text) ? Number(text) : null)

/**
 * Parses what `systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result UNIT` prints:
 * one `Key=Value` line per property, in systemd's order, not ours. A key it did not ask for, a
 * missing key (an old systemd has no `NRestarts`), a repeated key or a number that is not one is
 * `unparseable`, naming what is wrong.
 */
export const parseShowOutput = (unit: string, stdout: string): Effect.Effect<UnitStatus, SystemdError> => {
  const fail = (detail: string) =>
    Effect.fail(new SystemdError({ unit, reason: "unparseable", detail: `systemctl show ${unit}: ${detail}; it printed ${JSON.stringify(stdout)}` }))
  const values = new Map<string, string>()
  const unknown: string[] = []
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue
    const eq = line.indexOf("=")
    if (eq <= 0) return fail(`a line is not Key=Value: ${JSON.stringify(line)}`)
    const key = line.slice(0, eq)
    if (!(SHOWN_PROPERTIES as ReadonlyArray<string>).includes(key)) unknown.push(key)
    else if (values.has(key)) return fail(`${key} printed twice`)
    else values.set(key, line.slice(eq + 1))
  }
  if (unknown.length > 0) return fail(`unknown keys ${unknown.join(", ")}`)
  const missing = SHOWN_PROPERTIES.filter((key) => !values.has(key))
  if (missing.length > 0) return fail(`missing keys ${missing.join(", ")}`)
  const mainPid = integer(values.get("MainPID")!)
  if (mainPid === null) return fail(`MainPID is not a number: ${JSON.stringify(values.get("MainPID"))}`)
  const nRestarts = integer(values.get("NRestarts")!)
  if (nRestarts === null) return fail(`NRestarts is not a number: ${JSON.stringify(values.get("NRestarts"))}`)
  return Effect.succeed({
    activeState: values.get("ActiveState")!,
    subState: values.get("SubState")!,
    mainPid: mainPid === 0 ? null : mainPid,
    nRestarts,
    result: values.get("Result")!
  })
}

export interface SystemdUnitsOptions {
  /** The environment `systemctl` runs with and is looked up in (its PATH); the daemon's own by default. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * How long one `systemctl` call may take. `restart` waits for systemd's job, which can take the
   * unit's TimeoutStopSec plus TimeoutStartSec (90 s each by default), so the default is generous.
   */
  readonly timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 200_000

const runSystemctl = (unit: string, args: ReadonlyArray<string>, options: SystemdUnitsOptions) =>
  Effect.async<string, SystemdError>((resume, signal) => {
    const command = `systemctl ${args.join(" ")}`
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const child = execFile(
      "systemctl",
      [...args],
      {
        env: (options.env ?? process.env) as NodeJS.ProcessEnv,
        encoding: "utf8",
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 1024 * 1024
      },
      (error, stdout, stderr) => {
        if (error === null) return resume(Effect.succeed(stdout))
        const code = (error as NodeJS.ErrnoException).code
        if (typeof code === "string") {
          // Node's own error (ENOENT, EACCES): systemctl never ran.
          const where = code === "ENOENT" ? "not found on PATH" : `could not be run (${code})`
          return resume(Effect.fail(new SystemdError({ unit, reason: "spawn-failed", detail: `${command}: systemctl ${where}: ${error.message}` })))
        }
        const said = stderr.trim() === "" ? "(nothing on stderr)" : stderr.trim()
        const how = error.killed && code == null ? `was killed after ${Math.round(timeoutMs / 1000)} s` : `exited with code ${code ?? error.signal}`
        resume(Effect.fail(new SystemdError({ unit, reason: "command-failed", detail: `${command} ${how}: ${said}` })))
      }
    )
    signal.addEventListener("abort", () => child.kill("SIGKILL"))
  })

/** The live implementation: `systemctl` found on the PATH of `options.env` (the daemon's by default). */
export const makeSystemdUnits = (options: SystemdUnitsOptions = {}) => {
  const act = (verb: UnitVerb) => (unit: string) =>
    checkUnitName(unit).pipe(
      Effect.flatMap((name) => runSystemctl(name, [verb, name], options)),
      Effect.asVoid
    )
  return SystemdUnits.of({
    show: (unit) =>
      checkUnitName(unit).pipe(
        Effect.flatMap((name) => runSystemctl(name, ["show", "-p", SHOWN_PROPERTIES.join(","), name], options)),
        Effect.flatMap((stdout) => parseShowOutput(unit, stdout))
      ),
    restart: act("restart"),
    start: act("start"),
    stop: act("stop")
  })
}

export const systemdUnitsLayer = (options: SystemdUnitsOptions = {}) => Layer.succeed(SystemdUnits, makeSystemdUnits(options))

/** Needs only `systemctl` on the daemon's PATH (and, to act on units as a non-root user, the polkit rule in systemd/). */
export const SystemdUnitsLive = systemdUnitsLayer()
