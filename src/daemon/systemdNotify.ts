import { execFile } from "node:child_process"

/**
 * Readiness and watchdog pings for a `Type=notify` unit. Node cannot send to
 * the datagram `NOTIFY_SOCKET` itself, so each message goes through
 * `systemd-notify`, a child (the unit sets `NotifyAccess=all` to accept it).
 * It runs without `--no-block`: it then sends `BARRIER=1` after the message
 * and waits until systemd has read both, so it is still alive when systemd
 * looks up which unit sent it (a sender that has already exited may not be
 * attributed to the service, systemd 252's manual warns). Messages go one at a
 * time, in order. Without `NOTIFY_SOCKET` (not under systemd) every call does
 * nothing.
 */
export interface SystemdNotifier {
  readonly ready: (status: string) => void
  readonly stopping: () => void
  readonly close: () => void
}

/** How long one `systemd-notify` may wait for systemd's barrier before it is killed. */
const NOTIFY_TIMEOUT_MS = 10_000

export const systemdNotifier = (env: NodeJS.ProcessEnv, log: (message: string) => void): SystemdNotifier => {
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === "") return { ready: () => undefined, stopping: () => undefined, close: () => undefined }
  const watchdogUsec = Number(env.WATCHDOG_USEC ?? "0")
  let timer: NodeJS.Timeout | null = null
  let chain: Promise<void> = Promise.resolve()
  let pingPending = false
  const notify = (args: ReadonlyArray<string>) => {
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          execFile("systemd-notify", [...args], { timeout: NOTIFY_TIMEOUT_MS, killSignal: "SIGKILL" }, (error) => {
            if (error !== null) log(`systemd-notify ${args.join(" ")} failed: ${error.message}`)
            resolve()
          })
        })
    )
    return chain
  }
  return {
    ready: (status) => {
      void notify(["--ready", `--status=${status}`])
      // Ping at half the watchdog interval, as systemd advises; a ping still waiting for its barrier is not doubled.
      if (watchdogUsec > 0) {
        timer = setInterval(() => {
          if (pingPending) return
          pingPending = true
          void notify(["WATCHDOG=1"]).then(() => (pingPending = false))
        }, Math.max(500, watchdogUsec / 2000))
      }
    },
    stopping: () => void notify(["STOPPING=1"]),
    close: () => {
      if (timer !== null) clearInterval(timer)
    }
  }
}
