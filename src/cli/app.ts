import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as fs from "node:fs"
import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Config, Console, Effect, Exit, Option } from "effect"
import { splitGlobals } from "./argv.js"
import { bracketRepeated, closest, errorLine, explainParseError, tidyHelp } from "./helpText.js"
import { CliError, openEnvironment, type GlobalOptions } from "./environment.js"
import { dispatchCommand, preflightCommand, verifyCommand } from "./sessionCommands.js"
import { cancelCommand, psCommand, sendCommand, showCommand } from "./controlCommands.js"
import { runSignal } from "./signalCore.js"
import type { DispatchRequest } from "../sessions/buildSpec.js"
import { doctorCommand } from "./doctorCommand.js"
import { attachCommand, drainCommand, logsCommand, retryCommand, tailCommand } from "./followCommands.js"
import { serviceVerbCommand, servicesCommand } from "./servicesCommand.js"
import { argusCommand } from "./argusCommand.js"
import { daemonCommand } from "./daemonCommand.js"
import { vizCommand } from "./vizCommand.js"
import { VIZ_FORMATS } from "../viz/render.js"
import { dashboardCommand } from "./dashboardCommand.js"

const workspace = Options.text("workspace").pipe(
  Options.withDescription("the workspace directory (default ~/.openclaw/workspace)"),
  Options.withFallbackConfig(Config.string("WARDEN_WORKSPACE")),
  Options.optional
)
const configFile = Options.text("config").pipe(
  Options.withDescription("the config file (default <workspace>/warden.json, else the built-in one)"),
  Options.withFallbackConfig(Config.string("WARDEN_CONFIG")),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("print JSON for scripts"))
const bead = Args.text({ name: "bead" }).pipe(Args.withDescription("the bead's id, e.g. bd-a1b2"))
const optionalText = (name: string, description: string) => Options.text(name).pipe(Options.withDescription(description), Options.optional)

const warden = Command.make("warden", { workspace, config: configFile })

/** Runs a command body in the workspace the global options name. */
const withEnvironment = <A>(body: (env: Effect.Effect.Success<ReturnType<typeof openEnvironment>>) => Effect.Effect<A, CliError>) =>
  Effect.gen(function* () {
    const global = yield* warden
    const options: GlobalOptions = { workspace: Option.getOrUndefined(global.workspace), config: Option.getOrUndefined(global.config) }
    const env = yield* openEnvironment(options)
    return yield* body(env)
  }).pipe(Effect.scoped)

const dispatchOptions = {
  bead,
  repo: Options.text("repo").pipe(Options.withDescription("the git repository the agent works in")),
  agent: Options.text("agent").pipe(Options.withDescription("the agent profile (demo, demo-tui, custom, ...)")),
  template: optionalText("template", "prompt template: feature, bug-fix, refactor, code-review, docs, script, custom"),
  prompt: optionalText("prompt", "the task (the template's description when --template is given)"),
  promptFile: optionalText("prompt-file", "read the task from this file"),
  title: optionalText("title", "the bead's title, for templates"),
  acceptance: optionalText("acceptance", "acceptance criteria, for templates"),
  command: optionalText("command", "for the custom profile: the command line to run (sh -c)"),
  timeout: Options.integer("timeout").pipe(Options.withDescription("deadline per attempt, seconds"), Options.optional),
  stall: Options.integer("stall").pipe(Options.withDescription("no output for this many seconds is a stall"), Options.optional),
  maxRetries: Options.integer("max-retries").pipe(Options.withDescription("attempts in all, 1 to 20 (the seed's max_retries counts attempts, not retries)"), Options.optional),
  priority: Options.integer("priority").pipe(Options.withDescription("0 (most urgent) to 4, for the daemon's queue"), Options.withDefault(2))
}

type DispatchArgs = {
  readonly [K in keyof typeof dispatchOptions]: (typeof dispatchOptions)[K] extends Options.Options<infer A> | Args.Args<infer A> ? A : never
}

const toRequest = (a: DispatchArgs): DispatchRequest => ({
  bead: a.bead,
  repo: a.repo,
  agent: a.agent,
  template: Option.getOrUndefined(a.template),
  prompt: Option.getOrUndefined(a.prompt),
  promptFile: Option.getOrUndefined(a.promptFile),
  title: Option.getOrUndefined(a.title),
  acceptance: Option.getOrUndefined(a.acceptance),
  command: Option.getOrUndefined(a.command),
  overrides: {
    timeoutMs: Option.getOrUndefined(Option.map(a.timeout, (s) => s * 1000)),
    stallMs: Option.getOrUndefined(Option.map(a.stall, (s) => s * 1000)),
    maxAttempts: Option.getOrUndefined(a.maxRetries)
  }
})

const dispatch = Command.make(
  "dispatch",
  { ...dispatchOptions, wait: Options.boolean("wait").pipe(Options.withDescription("run the session in the foreground until it ends")), json },
  (a) => withEnvironment((env) => dispatchCommand(env, toRequest(a), { wait: a.wait, json: a.json, priority: a.priority }))
).pipe(Command.withDescription("dispatch a bead to an agent"))

const preflight = Command.make(
  "preflight",
  {
    ...dispatchOptions,
    bead: Options.text("bead").pipe(Options.withDescription("the bead id to check")),
    json
  },
  (a) => withEnvironment((env) => preflightCommand(env, toRequest(a as unknown as DispatchArgs), a.json))
).pipe(Command.withDescription("run the checks that precede every attempt, and name each one that fails"))

const verify = Command.make("verify", { bead, json }, (a) => withEnvironment((env) => verifyCommand(env, a.bead, a.json))).pipe(
  Command.withDescription("verify a bead's work (tests, changes) and keep the result in its records")
)

const signal = Command.make(
  "signal",
  {
    bead: Args.text({ name: "bead" }).pipe(
      Args.withDescription("the bead (default: $WARDEN_BEAD); with --from codex-notify, codex's JSON payload"),
      Args.optional
    ),
    status: Options.choice("status", ["done", "failed", "waiting"]).pipe(Options.withDescription("what the agent reports"), Options.optional),
    summary: optionalText("summary", "one line about the result"),
    attempt: optionalText("attempt", "the attempt id (default: $WARDEN_ATTEMPT)"),
    from: Options.choice("from", ["claude-hook", "codex-notify"]).pipe(
      Options.withDescription("called by an agent CLI: a Claude Code hook (JSON on stdin) or Codex's notify (JSON as the last argument)"),
      Options.optional
    )
  },
  (a) =>
    withEnvironment((env) =>
      Effect.suspend(() => {
        const outcome = runSignal(env.paths, {
          bead: Option.getOrUndefined(a.bead),
          status: Option.getOrUndefined(a.status),
          summary: Option.getOrUndefined(a.summary),
          attempt: Option.getOrUndefined(a.attempt),
          from: Option.getOrUndefined(a.from),
          stdin: () => fs.readFileSync(0, "utf8")
        })
        for (const warning of outcome.warnings) process.stderr.write(`${warning}\n`)
        return outcome.error === null ? Effect.void : Effect.fail(new CliError({ message: outcome.error, exitCode: outcome.exitCode }))
      })
    )
).pipe(Command.withDescription("report completion from inside an agent's session"))

const ps = Command.make("ps", { json }, (a) => withEnvironment((env) => psCommand(env, a.json))).pipe(
  Command.withDescription("list sessions, reconciled against their supervisor and tmux")
)

const show = Command.make("show", { bead, json }, (a) => withEnvironment((env) => showCommand(env, a.bead, a.json))).pipe(
  Command.withDescription("a session's states with timestamps, and why it ended as it did")
)

const cancel = Command.make("cancel", { json, bead }, (a) => withEnvironment((env) => cancelCommand(env, a.bead, a.json))).pipe(
  Command.withDescription("cancel a bead's session")
)

const send = Command.make(
  "send",
  {
    noEnter: Options.boolean("no-enter").pipe(Options.withDescription("type the text without pressing Enter")),
    keys: Options.text("key").pipe(
      Options.withDescription("press a named key instead (Enter, Down, Up, Escape, Tab, C-c, ...); repeatable, no Enter added"),
      Options.repeated
    ),
    bead,
    text: Args.text({ name: "text" }).pipe(Args.withDescription("what to type (newlines and tabs; no other control characters)"), Args.optional)
  },
  (a) => withEnvironment((env) => sendCommand(env, a.bead, Option.getOrUndefined(a.text), a.keys, !a.noEnter && a.keys.length === 0))
).pipe(Command.withDescription("type text (or press keys) in the agent's terminal, to answer what it asks"))

const doctor = Command.make(
  "doctor",
  {
    repo: optionalText("repo", "also check folder trust for this repo"),
    profiles: Options.text("profile").pipe(Options.withDescription("check this profile only (repeatable)"), Options.repeated),
    json
  },
  (a) => withEnvironment((env) => doctorCommand(env, Option.getOrUndefined(a.repo), a.json, a.profiles))
).pipe(
  Command.withDescription(
    "check the agent profiles: command, version, and what its TUI would ask first; fails only for profiles in use (--profile, the config file's, or this workspace's runs)"
  )
)

/** Set once `warden daemon` serves: its SIGTERM is a clean stop, not an interruption. */
let daemonRunning = false

const daemon = Command.make(
  "daemon",
  {
    port: Options.integer("port").pipe(
      Options.withDescription("the API's port on 127.0.0.1 (default 9000, or WARDEN_PORT)"),
      Options.withFallbackConfig(Config.integer("WARDEN_PORT")),
      Options.withDefault(9000)
    ),
    concurrency: Options.integer("concurrency").pipe(Options.withDescription("sessions running at once"), Options.withDefault(10)),
    quota: Options.text("quota").pipe(Options.withDescription("PROFILE=N: at most N sessions of that profile at once; repeatable"), Options.repeated),
    allowOrigin: Options.text("allow-origin").pipe(Options.withDescription("a browser origin allowed to call the API; repeatable"), Options.repeated),
    feedWindow: Options.integer("feed-window").pipe(Options.withDescription("feed events kept for replay (persisted)"), Options.withDefault(1000))
  },
  (a) =>
    withEnvironment((env) =>
      Effect.gen(function* () {
        // A wrong value on the command line is a usage error (exit 2), named with what is expected.
        const usage = (message: string) => new CliError({ message, exitCode: 2 })
        const quotas: Record<string, number> = {}
        for (const entry of a.quota) {
          const match = /^([^=]+)=(\d+)$/.exec(entry)
          if (match === null) return yield* usage(`--quota ${entry}: write PROFILE=N, e.g. --quota claude=3`)
          if (!(match[1]! in env.config.profiles)) {
            return yield* usage(`--quota ${entry}: no profile "${match[1]}"; configured: ${Object.keys(env.config.profiles).sort().join(", ")}`)
          }
          quotas[match[1]!] = Number(match[2])
        }
        if (a.concurrency < 1) return yield* usage(`--concurrency ${a.concurrency}: at least 1`)
        if (a.port < 0 || a.port > 65535) return yield* usage(`--port ${a.port}: a port is 0 to 65535 (0 picks a free one)`)
        if (a.feedWindow < 1) return yield* usage(`--feed-window ${a.feedWindow}: at least 1 event`)
        for (const origin of a.allowOrigin) {
          let parsed: URL | null = null
          try {
            parsed = new URL(origin)
          } catch {
            // not a URL: refused below with its text
            parsed = null
          }
          // An origin is what a browser sends: scheme, host and port, nothing after.
          if (parsed === null || !["http:", "https:"].includes(parsed.protocol) || parsed.origin !== origin) {
            return yield* usage(`--allow-origin ${origin}: an origin is scheme://host[:port], as a browser sends it (e.g. http://localhost:5173)`)
          }
        }
        daemonRunning = true
        return yield* daemonCommand(env, { port: a.port, host: "127.0.0.1", concurrency: a.concurrency, quotas, allowedOrigins: a.allowOrigin, feedWindow: a.feedWindow })
      })
    )
).pipe(Command.withDescription("run the supervisor: a queue, a session actor per bead, the HTTP API (SIGTERM leaves agents running)"))

const logs = Command.make(
  "logs",
  { follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("follow until the session ends")), json, bead },
  (a) => withEnvironment((env) => logsCommand(env, a.bead, a.follow, a.json))
).pipe(Command.withDescription("the agent's terminal output of the bead's latest attempt"))

const attach = Command.make("attach", { bead }, (a) => withEnvironment((env) => attachCommand(env, a.bead))).pipe(
  Command.withDescription("tmux attach to the agent's session here, or watch the daemon's read-only stream")
)

const retry = Command.make("retry", { json, bead }, (a) => withEnvironment((env) => retryCommand(env, a.bead, a.json))).pipe(
  Command.withDescription("dispatch a finished bead again with its last request (through the daemon)")
)

const tail = Command.make(
  "tail",
  {
    topics: optionalText("topics", "comma-separated: sessions, records, queue, daemon"),
    since: Options.integer("since").pipe(Options.withDescription("replay from after this sequence number"), Options.optional),
    json
  },
  (a) => withEnvironment((env) => tailCommand(env, Option.getOrUndefined(a.topics), Option.getOrUndefined(a.since), a.json))
).pipe(Command.withDescription("the daemon's live event feed"))

const drain = Command.make(
  "drain",
  { off: Options.boolean("off").pipe(Options.withDescription("admit queued beads again")), json },
  (a) => withEnvironment((env) => drainCommand(env, !a.off, a.json))
).pipe(Command.withDescription("stop admitting new work before maintenance (running sessions go on)"))

const serviceName = Args.text({ name: "name" }).pipe(Args.withDescription("the service's name (services.<name> in the config)"))
const serviceVerb = (verb: "restart" | "stop" | "start", description: string) =>
  Command.make(verb, { json, name: serviceName }, (a) => withEnvironment((env) => serviceVerbCommand(env, verb, a.name, a.json))).pipe(
    Command.withDescription(description)
  )
const services = Command.make("services", { json }, (a) => withEnvironment((env) => servicesCommand(env, a.json))).pipe(
  Command.withDescription("the supervised services: state, pid, restarts, last exit, health"),
  Command.withSubcommands([
    serviceVerb("restart", "restart a service now (not counted towards its restart limit)"),
    serviceVerb("stop", "stop a service (its whole process group) until started again"),
    serviceVerb("start", "start a stopped or failed service")
  ])
)

const argus = Command.make(
  "argus",
  { once: Options.boolean("once").pipe(Options.withDescription("run a cycle now and print it")), json },
  (a) => withEnvironment((env) => argusCommand(env, a.once, a.json))
).pipe(Command.withDescription("Argus's last cycles: what it observed, decided, carried out or refused, and why"))

const viz = Command.make(
  "viz",
  {
    format: Options.choice("format", VIZ_FORMATS).pipe(Options.withDescription("svg (default), json (the graph with its layout) or mermaid text"), Options.withDefault("svg" as const)),
    session: optionalText("session", "mark the states this bead's session passed through and the one it is in (from its history)"),
    at: Options.integer("at").pipe(Options.withDescription("with --session: replay step N (1-based) of its history, with its event and evidence"), Options.optional),
    machine: Args.text({ name: "machine" }).pipe(Args.withDescription("agentSession, supervisor, service or argus"))
  },
  (a) => {
    const options = { machine: a.machine, format: a.format, session: Option.getOrUndefined(a.session), at: Option.getOrUndefined(a.at) }
    return options.session === undefined ? vizCommand(options, null) : withEnvironment((env) => vizCommand(options, env))
  }
).pipe(Command.withDescription("draw a statechart from its machine's definition, optionally marked with a session's history"))

const dashboard = Command.make("dashboard", { json }, (a) => withEnvironment((env) => dashboardCommand(env, a.json))).pipe(
  Command.withDescription("print a one-time login URL for the daemon's web dashboard (it works once, within 60 s)")
)

const commands = { daemon, dispatch, preflight, verify, signal, ps, show, logs, attach, cancel, retry, send, tail, drain, services, argus, dashboard, doctor, viz }

const cli = warden.pipe(
  Command.withDescription("Warden: supervises AI coding agents working on beads in durable tmux sessions"),
  Command.withSubcommands([daemon, dispatch, preflight, verify, signal, ps, show, logs, attach, cancel, retry, send, tail, drain, services, argus, dashboard, doctor, viz])
)

const run = Command.run(cli, { name: "warden", version: "0.1.0" })

/** The subcommand a hoisted command line names (after `--workspace X`, `--config X`), or null. */
const subcommandOf = (argv: ReadonlyArray<string>): string | null => {
  const { rest } = splitGlobals(argv.slice(2))
  return rest[0] !== undefined && !rest[0].startsWith("-") ? rest[0] : null
}

/** Says what is wrong with the command line (naming the option, from its usage and `argv`), then the command's usage; exit 2, as Unix commands do. */
const usageError = (message: string, name: string | null, argv: ReadonlyArray<string> = []) =>
  Effect.sync(() => {
    const command: Command.Command<string, never, never, never> | undefined =
      name === null ? undefined : (commands[name as keyof typeof commands] as unknown as Command.Command<string, never, never, never>)
    const usage =
      command === undefined
        ? `usage: warden [--workspace DIR] [--config FILE] <command> ...; commands: ${Object.keys(commands).join(", ")}; warden --help for more`
        : `usage: ${bracketRepeated(tidyHelp(HelpDoc.toAnsiText(Usage.getHelp(Command.getUsage(command))), false).trim().replace(/^\$ /, ""))}\n       warden ${name} --help for more`
    const said = command === undefined ? message : explainParseError(message, argv, usage)
    process.stderr.write(`warden: ${said}\n${usage.startsWith("usage: warden") ? usage : usage.replace(/^usage: /, "usage: warden ")}\n`)
    process.exitCode = 2
  })

/** Runs the full CLI on a command line whose global options are already hoisted (see `main.ts`). */
export const runApp = (argv: ReadonlyArray<string>): void => {
  const name = subcommandOf(argv)
  if (name !== null && !(name in commands)) {
    // Even with --help: a script must be able to tell that the command does not exist.
    const guess = closest(name, Object.keys(commands))
    Effect.runSync(usageError(`unknown command "${name}"${guess === null ? "" : ` (did you mean ${guess}?)`}`, null))
    return
  }
  // What @effect/cli prints goes through tidyHelp; its parse errors are kept for one line of ours.
  const parseErrors: string[] = []
  const tidied = Console.consoleWith((base) =>
    Effect.succeed({
      ...base,
      log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void process.stdout.write(`${tidyHelp(args.join(" "), process.stdout.isTTY === true)}\n`)),
      error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void parseErrors.push(args.join(" ")))
    } satisfies Console.Console)
  )
  Effect.flatMap(tidied, (console) =>
    run(argv).pipe(
      Effect.withConsole(console),
      Effect.catchIf(ValidationError.isValidationError, () => usageError(errorLine(parseErrors.join("\n")) || "invalid command line", name, argv))
    )
  ).pipe(
    Effect.catchTag("CliError", (error) =>
      Effect.sync(() => {
        process.stderr.write(`warden: ${error.message}\n`)
        // Exit status 2 from a Claude Code hook would block the agent from stopping: hook calls fail with 1.
        process.exitCode = argv.includes("--from") ? 1 : (error.exitCode ?? 1)
      })
    ),
    Effect.provide(CliConfig.layer({ showBuiltIns: false })),
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain({
      // Interrupted (Ctrl-C, SIGTERM) exits 130 after the cleanup ran; a command's own error code is kept.
      // The daemon stopped by SIGTERM has done its job (systemd must not take it for a failure): exit 0.
      teardown: (exit, onExit) =>
        onExit(
          Exit.isFailure(exit)
            ? Cause.isInterruptedOnly(exit.cause)
              ? daemonRunning
                ? 0
                : 130
              : 1
            : typeof process.exitCode === "number"
              ? process.exitCode
              : 0
        )
    })
  )
}
