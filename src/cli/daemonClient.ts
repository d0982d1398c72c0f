import * as fs from "node:fs"
import { Effect } from "effect"
import type { DaemonInfo } from "../daemon/runningDaemon.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import { CliError } from "./environment.js"

/** A call to this workspace's daemon, with its token; a refusal becomes a CliError with the daemon's reason. */
export const callDaemon = (paths: WorkspacePaths, info: DaemonInfo, method: "GET" | "POST", route: string, body?: unknown) =>
  Effect.tryPromise({
    try: async () => {
      const token = fs.readFileSync(paths.daemon.token, "utf8").trim()
      const response = await fetch(`http://${info.host}:${info.port}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const json = (await response.json()) as Record<string, unknown>
      return { status: response.status, json }
    },
    catch: (error) => new CliError({ message: `the daemon (pid ${info.pid}, port ${info.port}) did not answer: ${(error as Error).message}` })
  }).pipe(
    Effect.flatMap(({ status, json }) =>
      status >= 400
        ? Effect.fail(
            // A request the daemon finds malformed or invalid (400, 422) is the user's input: a usage error, exit 2.
            new CliError({ message: `the daemon refused (${status}): ${String(json.error)}`, ...(status === 400 || status === 422 ? { exitCode: 2 } : {}) })
          )
        : Effect.succeed(json)
    )
  )

