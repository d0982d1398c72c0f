import * as fs from "node:fs"
import * as path from "node:path"
import { defaultWorkspace, expandHome, workspacePaths } from "../workspace/paths.js"
import { restrictUmask, umaskFor } from "../workspace/statePermissions.js"
import { runSignal, type SignalRequest } from "./signalCore.js"

const USAGE = "usage: warden signal [BEAD] --status done|failed|waiting [--summary TEXT] [--attempt ID]\n       warden signal --from claude-hook|codex-notify [PAYLOAD]"

/** The few config fields `signal` needs, read without the schema (the full CLI checks the file). */
const configFields = (file: string): { workspace?: unknown; operatorsGroup?: unknown } => {
  try {
    const doc = JSON.parse(fs.readFileSync(file, "utf8")) as unknown
    return doc !== null && typeof doc === "object" ? (doc as { workspace?: unknown; operatorsGroup?: unknown }) : {}
  } catch {
    // no config file, or not JSON: the defaults apply, as for the CLI
    return {}
  }
}

let hookCall = false

const fail = (message: string, code: number): never => {
  process.stderr.write(`warden: ${message}\n${USAGE}\n`)
  // Exit status 2 from a Claude Code hook would block the agent from stopping: hook calls fail with 1 at most.
  process.exit(hookCall ? Math.min(code, 1) : code)
}

/**
 * `warden signal` without the full CLI: agents call it on every hook and turn,
 * so it parses its few options itself and loads no Effect module. The
 * workspace is `--workspace`, `$WARDEN_WORKSPACE` (agents have it), the
 * config's `workspace`, or the default, as everywhere else.
 */
export const signalMain = (global: { workspace?: string; config?: string }, args: ReadonlyArray<string>): void => {
  hookCall = args.some((arg) => arg === "--from" || arg.startsWith("--from="))
  const options: Record<string, string> = {}
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=")
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      if (!["status", "summary", "attempt", "from"].includes(name)) fail(`signal: unknown option --${name}`, 2)
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1)
      if (value === undefined) fail(`signal: --${name} needs a value`, 2)
      options[name] = value!
    } else positional.push(arg)
  }
  if (positional.length > 1) fail(`signal: one bead at most, got ${positional.length} arguments`, 2)
  const status = options.status
  if (status !== undefined && !["done", "failed", "waiting"].includes(status)) fail(`signal: --status must be done, failed or waiting, not "${status}"`, 2)
  const from = options.from
  if (from !== undefined && !["claude-hook", "codex-notify"].includes(from)) fail(`signal: --from must be claude-hook or codex-notify, not "${from}"`, 2)

  const env = process.env
  const guess = global.workspace ?? env.WARDEN_WORKSPACE
  const configFile =
    global.config ?? env.WARDEN_CONFIG ?? (fs.existsSync(path.join(expandHome(guess ?? defaultWorkspace()), "warden.json")) ? path.join(expandHome(guess ?? defaultWorkspace()), "warden.json") : null)
  const config = configFile === null ? {} : configFields(expandHome(configFile))
  const workspace = guess ?? (typeof config.workspace === "string" ? config.workspace : defaultWorkspace())
  const paths = workspacePaths(workspace)
  // Only the umask: the group itself is looked up (and checked) by the daemon and the full CLI.
  restrictUmask({ umask: umaskFor(typeof config.operatorsGroup === "string" ? config.operatorsGroup : undefined) })
  const request: SignalRequest = {
    bead: positional[0],
    status: status as SignalRequest["status"],
    summary: options.summary,
    attempt: options.attempt,
    from: from as SignalRequest["from"],
    stdin: () => fs.readFileSync(0, "utf8")
  }
  const outcome = runSignal(paths, request)
  for (const warning of outcome.warnings) process.stderr.write(`${warning}\n`)
  if (outcome.error !== null) process.stderr.write(`warden: ${outcome.error}\n`)
  // Exit status 2 from a Claude Code hook would block the agent from stopping: hook calls fail with 1 at most.
  process.exitCode = from !== undefined ? Math.min(outcome.exitCode, 1) : outcome.exitCode
}
