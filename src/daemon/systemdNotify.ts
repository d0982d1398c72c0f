import { execFile } from "node:child_process"

/**
 * Readiness and watchdog pings for a `Type=notify` unit. Node cannot send to
 * the datagram `NOTIFY_SOCKET` itself, so each message goes through
 * `systemd-notify` (the unit sets `NotifyAccess=all` to accept it from a child).
 * Without `NOTIFY_SOCKET` (not under systemd) every call does nothing.
 */
export interface SystemdNotifier {
  readonly ready: (status: string) => void
  readonly stopping: () => void
  readonly close: () => void
}

const notify = (args: ReadonlyArray<string>, log: (message: string) => void) =>
  execFile("systemd-notify", ["--no-block", ...args], (error) => {
    if (error !== null) log(`systemd-notify ${args.join(" ")} failed: ${error.message}`)
  })

export const systemdNotifier = (env: NodeJS.ProcessEnv, log: (message: string) => void): SystemdNotifier => {
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === "") return { ready: () => undefined, stopping: () => undefined, close: () => undefined }
  const watchdogUsec = Number(env.WATCHDOG_USEC ?? "0")
  let timer: NodeJS.Timeout | null = null
  return {
    ready: (status) => {
      notify(["--ready", `--status=${status}`], log)
      // Ping at half the watchdog interval, as systemd advises.
      if (watchdogUsec > 0) timer = setInterval(() => notify(["WATCHDOG=1"], log), Math.max(500, watchdogUsec / 2000))
    },
    stopping: () => notify(["STOPPING=1"], log),
    close: () => {
      if (timer !== null) clearInterval(timer)
    }
  }
}
