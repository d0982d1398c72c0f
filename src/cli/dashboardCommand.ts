import { Effect } from "effect"
import { runningDaemon } from "../daemon/runningDaemon.js"
import { callDaemon } from "./daemonClient.js"
import { CliError, type CliEnvironment } from "./environment.js"

/**
 * `warden dashboard [--json]`: asks this workspace's daemon (with the token)
 * for a one-time login URL and prints it. The URL holds a code that works
 * once, within its lifetime; only the daemon's memory keeps its hash.
 */
export const dashboardCommand = (env: CliEnvironment, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* new CliError({ message: "no warden daemon runs for this workspace: start one with `warden daemon`" })
    const answer = (yield* callDaemon(env.paths, daemon, "POST", "/v1/dashboard/login", {})) as unknown as { url: string; expires_at: string }
    if (json) return void process.stdout.write(`${JSON.stringify(answer)}\n`)
    const seconds = Math.max(0, Math.round((Date.parse(answer.expires_at) - Date.now()) / 1000))
    process.stdout.write(`${answer.url}\nOpen it in your browser: it works once, within ${seconds} s (until ${answer.expires_at}).\n`)
  })
