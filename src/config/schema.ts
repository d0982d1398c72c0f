import { Schema } from "effect"

/**
 * The configuration file's schema. Decoding with it yields a fully defaulted
 * object; `config/warden.schema.json` is generated from it (`npm run schemas`)
 * and a test keeps the two in step.
 */

const Millis = Schema.Int.pipe(Schema.greaterThanOrEqualTo(0))
const RegexText = Schema.String.pipe(
  Schema.filter((text) => {
    try {
      new RegExp(text)
      return true
    } catch (error) {
      return `not a valid regular expression: ${(error as Error).message}`
    }
  })
)

export const FailureReasonSchema = Schema.Literal(
  "preflight-failed",
  "launch-failed",
  "agent-failed",
  "agent-exited",
  "session-lost",
  "timeout",
  "verification-failed",
  "cancelled"
)

export const CompletionSourceSchema = Schema.Literal("signal", "status-file", "marker", "idle-prompt", "exit")

export const RetryPolicySchema = Schema.Struct({
  maxAttempts: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  backoffInitialMs: Schema.optionalWith(Millis, { default: () => 5_000 }),
  backoffFactor: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  backoffMaxMs: Schema.optionalWith(Millis, { default: () => 300_000 }),
  retryOn: Schema.optionalWith(Schema.Array(FailureReasonSchema), {
    default: () => ["launch-failed", "agent-failed", "agent-exited", "session-lost", "timeout"] as const
  })
})
export type RetryPolicyConfig = typeof RetryPolicySchema.Type

export const PromptDeliverySchema = Schema.Struct({
  /** argument: as an argument (`{prompt}` in args, else appended); stdin: piped in; file: `{promptFile}` in args; keys: typed once `readyPattern` shows. */
  mode: Schema.Literal("argument", "stdin", "file", "keys"),
  /** For `keys`: a pattern on the screen that says the program is ready to read (required for keys). */
  readyPattern: Schema.optional(RegexText),
  readyTimeoutMs: Schema.optionalWith(Millis, { default: () => 60_000 }),
  /** For `keys`: a pattern that confirms the prompt was taken (defaults to the screen changing after Enter). */
  acceptedPattern: Schema.optional(RegexText),
  /** For `keys`: wait this long between typing the prompt and pressing Enter (a TUI takes a fast burst for a paste). */
  enterDelayMs: Schema.optionalWith(Millis, { default: () => 0 })
})

export const CompletionSchema = Schema.Struct({
  sources: Schema.Array(CompletionSourceSchema),
  /** A whole output line that means done (tested per line, after the prompt was delivered). */
  doneMarker: Schema.optional(RegexText),
  failedMarker: Schema.optional(RegexText),
  /** The agent's own idle prompt, matched against the last non-empty screen line. Never a generic shell prompt. */
  idlePrompt: Schema.optional(RegexText),
  /** How long the idle prompt must stay on a quiet screen before it counts. */
  idleSettleMs: Schema.optionalWith(Millis, { default: () => 750 }),
  /** Patterns on the screen's last lines that mean a dialog or question waits for an answer. */
  waitingPatterns: Schema.optionalWith(Schema.Array(RegexText), { default: () => [] })
})

export const ProfileSchema = Schema.Struct({
  /** The agent CLI family written to records' `agent` (`claude`, `codex`); the profile's name when absent. */
  agent: Schema.optional(Schema.NonEmptyString),
  description: Schema.optional(Schema.String),
  command: Schema.NonEmptyString,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  prompt: PromptDeliverySchema,
  completion: CompletionSchema,
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Added to `env` only when the agent runs as root and the config allows it (Claude Code wants `IS_SANDBOX=1`). */
  rootEnv: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** How to read the agent's output: plain text, or the JSON event stream of `claude -p` / `codex exec --json`. */
  output: Schema.optionalWith(Schema.Literal("text", "claude-stream-json", "codex-exec-json"), { default: () => "text" as const }),
  /** `claude-settings`: Warden writes a settings file with Stop and Notification hooks that call `warden signal` (`{settingsFile}`). */
  hooks: Schema.optionalWith(Schema.Literal("none", "claude-settings"), { default: () => "none" as const }),
  /** Extra preflight checks: the CLI reports its version; the HOME it uses has accepted onboarding, trust and the API key. */
  preflight: Schema.optionalWith(
    Schema.Struct({
      version: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      claudeHome: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      codexHome: Schema.optionalWith(Schema.Boolean, { default: () => false })
    }),
    { default: () => ({ version: false, claudeHome: false, codexHome: false }) }
  ),
  model: Schema.optional(Schema.NonEmptyString),
  /** The agent's permission mode (`{permissionMode}` in args), e.g. Claude Code's `bypassPermissions`, `acceptEdits`, `default`. */
  permissionMode: Schema.optional(Schema.NonEmptyString),
  timeoutMs: Schema.optional(Millis),
  stallMs: Schema.optional(Millis),
  retry: Schema.optional(RetryPolicySchema)
})
export type ProfileConfig = typeof ProfileSchema.Type

export const VerificationCheckSchema = Schema.Struct({
  name: Schema.NonEmptyString,
  /** Run through `sh -c` in the repo. */
  command: Schema.NonEmptyString,
  /** Run only when this file exists in the repo (e.g. `package.json`). */
  when: Schema.optional(Schema.String),
  timeoutMs: Schema.optionalWith(Millis, { default: () => 600_000 }),
  /** Which seed verification key this check fills (`tests`, `lint`, `ubs`). */
  seedKey: Schema.optional(Schema.Literal("tests", "lint", "ubs"))
})

export const VerificationSchema = Schema.Struct({
  /** Run the repo's `npm test` when its package.json has a test script. */
  repoTests: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  repoTestsTimeoutMs: Schema.optionalWith(Millis, { default: () => 600_000 }),
  /** Require that the work changed something: new commits, or staged, unstaged or untracked changes. */
  requireChanges: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  checks: Schema.optionalWith(Schema.Array(VerificationCheckSchema), { default: () => [] }),
  outputTailChars: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 2_000 })
})

export const DefaultsSchema = Schema.Struct({
  timeoutMs: Schema.optionalWith(Millis, { default: () => 1_800_000 }),
  stallMs: Schema.optionalWith(Millis, { default: () => 300_000 }),
  retry: Schema.optionalWith(RetryPolicySchema, { default: () => Schema.decodeSync(RetryPolicySchema)({}) })
})

/** How long finished work's files are kept, and how large the log grows (see `src/workspace/retention.ts`). */
export const RetentionSchema = Schema.Struct({
  /** Transcripts (`state/transcripts/`) of beads that are no longer live, removed this many days after their last write. */
  transcriptsDays: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 14 }),
  /**
   * The per-attempt files in `state/watch/` (prompt, launcher, settings, launch record, exit file, status file,
   * signal log) and the retry requests (`state/requests/`) of beads that are no longer live, removed this many
   * days after their last write. Records and memory notes are kept.
   */
  stateDays: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 30 }),
  /** `state/warden.log` is rotated when it reaches this size (not under systemd, where the log goes to the journal). */
  logMaxBytes: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1024)), { default: () => 10 * 1024 * 1024 }),
  /** Rotated logs kept beside it: `warden.log.1` (newest) to `warden.log.<logFiles>`. */
  logFiles: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 5 })
})
export type RetentionConfig = typeof RetentionSchema.Type

/** A service's health probe: HTTP (its status and, optionally, a body pattern: an open port is not health) or TCP. */
const HealthSchema = Schema.Struct({
  http: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "an http:// or https:// URL" }))),
  expectStatus: Schema.optionalWith(Schema.Int.pipe(Schema.between(100, 599)), { default: () => 200 }),
  bodyPattern: Schema.optional(RegexText),
  tcp: Schema.optional(Schema.Int.pipe(Schema.between(1, 65535))),
  intervalSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0)), { default: () => 10 }),
  timeoutSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0)), { default: () => 3 }),
  /** Consecutive failed probes that make a running service unhealthy enough to restart. */
  unhealthyAfter: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100)), { default: () => 3 })
}).pipe(Schema.filter((h) => (h.http === undefined) !== (h.tcp === undefined) || "give exactly one of http and tcp"))

/** How a service is restarted: exponential backoff with a cap, and an intensity limit (`maxRestarts` within `withinSeconds`). */
const RestartSchema = Schema.Struct({
  backoffInitialMs: Schema.optionalWith(Millis, { default: () => 1_000 }),
  backoffFactor: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  backoffMaxMs: Schema.optionalWith(Millis, { default: () => 60_000 }),
  maxRestarts: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(0)), { default: () => 5 }),
  withinSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0)), { default: () => 60 }),
  /** A run healthy this long resets the backoff. */
  healthyResetMs: Schema.optionalWith(Millis, { default: () => 30_000 })
})

/** A service the daemon supervises: a program it runs itself (`process`), or a systemd unit it watches (`systemd`). */
export const ServiceSchema = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal("process", "systemd"), { default: () => "process" as const }),
  command: Schema.optional(Schema.NonEmptyString),
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  cwd: Schema.optional(Schema.NonEmptyString),
  env: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  unit: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9:_.@-]+\.service$/, { message: () => "a unit name such as openclaw-gateway.service" }))),
  health: Schema.optional(HealthSchema),
  restart: Schema.optionalWith(RestartSchema, { default: () => Schema.decodeSync(RestartSchema)({}) }),
  /** Exit codes that mean "do not restart" (systemd's RestartPreventExitStatus; 78 is a bad config): straight to failed. */
  preventRestartExitCodes: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] }),
  /** Keep the process running across a daemon restart (re-adopted by pid and start time); by default it stops with the daemon. */
  detach: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Between SIGTERM and SIGKILL to the service's process group. */
  stopGraceMs: Schema.optionalWith(Millis, { default: () => 5_000 }),
  /** The service's log (state/services/<name>.log) is rotated past this size, one generation kept. */
  logMaxBytes: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1024)), { default: () => 5 * 1024 * 1024 })
}).pipe(
  Schema.filter((s) =>
    s.mode === "process"
      ? s.command !== undefined || "a process service needs its command"
      : s.unit !== undefined || "a systemd service needs its unit"
  )
)
export type ServiceConfig = typeof ServiceSchema.Type

/** Where alerts go (a failed service, Argus's alerts): Telegram, a webhook, a command; secrets come from the environment, by name. */
const AlertsSchema = Schema.Struct({
  telegram: Schema.optional(
    Schema.Struct({
      baseUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "an http:// or https:// URL" })), { default: () => "https://api.telegram.org" }),
      tokenEnv: Schema.optionalWith(Schema.NonEmptyString, { default: () => "TELEGRAM_BOT_TOKEN" }),
      chatEnv: Schema.optionalWith(Schema.NonEmptyString, { default: () => "TELEGRAM_CHAT_ID" })
    })
  ),
  webhook: Schema.optional(
    Schema.Struct({
      url: Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "an http:// or https:// URL" })),
      secretEnv: Schema.optionalWith(Schema.NonEmptyString, { default: () => "WARDEN_WEBHOOK_SECRET" }),
      attempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10)), { default: () => 3 }),
      backoffMs: Schema.optionalWith(Millis, { default: () => 500 })
    })
  ),
  command: Schema.optional(
    Schema.Struct({
      /** The program and its arguments, `{text}` replaced by the alert's text in its one argument; never a shell. */
      argv: Schema.NonEmptyArray(Schema.String),
      timeoutMs: Schema.optionalWith(Millis, { default: () => 10_000 })
    })
  ),
  /** The same problem is sent once within this window. */
  dedupMinutes: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(0)), { default: () => 60 })
})

/**
 * Argus's LLM decider: asked through the Messages API (`baseUrl`, default `ANTHROPIC_BASE_URL` when set, else
 * Anthropic's) or through `claude -p`, with the key read from the environment variable `apiKeyEnv` (never from
 * this file, never on a command line).
 */
const ArgusLlmSchema = Schema.Struct({
  via: Schema.optionalWith(Schema.Literal("messages-api", "claude-cli"), { default: () => "messages-api" as const }),
  baseUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/, { message: () => "an http:// or https:// URL" }))),
  model: Schema.optionalWith(Schema.NonEmptyString, { default: () => "claude-haiku-4-5" }),
  apiKeyEnv: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: () => "an environment variable's name" })), {
    default: () => "ANTHROPIC_API_KEY"
  }),
  timeoutSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.between(1, 120)), { default: () => 30 }),
  /** The `claude` program for `via: "claude-cli"` (a name on PATH or a path). */
  command: Schema.optionalWith(Schema.NonEmptyString, { default: () => "claude" })
})

/** A `ws://` or `wss://` URL that a websocket client can open (a host, a port within 1-65535). */
const WebsocketUrl = Schema.String.pipe(
  Schema.filter(
    (text) => {
      try {
        const url = new URL(text)
        return (url.protocol === "ws:" || url.protocol === "wss:") && url.hostname !== ""
      } catch {
        // Not a URL at all (a bad port, a broken host): refused with the message below.
        return false
      }
    },
    { message: () => "a ws:// or wss:// URL with a host and a valid port, such as ws://localhost:8080" }
  )
)

/** Argus, the watchdog: a cycle on an interval, deciding by rules, acting only within its allowlist. */
const ArgusSchema = Schema.Struct({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  intervalSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0)), { default: () => 300 }),
  /** `rules` (deterministic, documented thresholds), or `llm` (a model's advice, validated like the rules'; the rules decide when it fails). */
  decider: Schema.optionalWith(Schema.Literal("rules", "llm"), { default: () => "rules" as const }),
  llm: Schema.optionalWith(ArgusLlmSchema, { default: () => Schema.decodeSync(ArgusLlmSchema)({}) }),
  /** Audit every decision, carry out none. */
  dryRun: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  maxActionsPerCycle: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 100)), { default: () => 5 }),
  /** An orphan younger than this is never killed. */
  graceSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(0)), { default: () => 300 }),
  /** A session stalled or waiting for input this long is alerted, and wakes Argus then. */
  stalledSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0)), { default: () => 900 }),
  /** Cycles an orphan must be seen in before it may be killed. */
  orphanCycles: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100)), { default: () => 3 })
})

/** The dashboard's login (see `src/server/dashboardAuth.ts`): how long a login link and a session live. */
const DashboardSchema = Schema.Struct({
  /** A one-time login link (`warden dashboard`) is refused this many seconds after it was made. */
  loginCodeSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 3600)), { default: () => 60 }),
  /** A dashboard session no request used for this many minutes is over. */
  sessionIdleMinutes: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 7 * 24 * 60)), { default: () => 12 * 60 }),
  /** A dashboard session is over this many hours after its login, however busy. */
  sessionHours: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 30 * 24)), { default: () => 7 * 24 })
})

export const ConfigSchema = Schema.Struct({
  $schema: Schema.optional(Schema.String),
  /** Workspace directory; `--workspace` and `WARDEN_WORKSPACE` win over it. */
  workspace: Schema.optional(Schema.String),
  tmuxSocket: Schema.optionalWith(Schema.String, { default: () => "/tmp/openclaw-coding-agents.sock" }),
  /** Repos must lie under one of these (after resolving symlinks); `~` is the home directory. */
  allowedRoots: Schema.optionalWith(Schema.Array(Schema.String), { default: () => ["~"] }),
  /** Run agents as root (also `WARDEN_ALLOW_ROOT=1`). */
  allowRoot: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * A group whose members operate this workspace: the API token may then be 0640 and the workspace's
   * state group-readable. Without it, the token and the state are private to the daemon's user (0600/0700).
   */
  operatorsGroup: Schema.optional(Schema.NonEmptyString),
  retention: Schema.optionalWith(RetentionSchema, { default: () => Schema.decodeSync(RetentionSchema)({}) }),
  /**
   * How often the daemon checks every agent pane on the socket with one `list-panes -a`: the safety net
   * for a session that died without its launcher writing the exit file (a killed tmux server, say).
   */
  livenessIntervalMs: Schema.optionalWith(Millis.pipe(Schema.greaterThanOrEqualTo(100)), { default: () => 10_000 }),
  /** How long an ended session's processes get between SIGTERM and SIGKILL (`cgroup.kill`). */
  killGraceMs: Schema.optionalWith(Millis, { default: () => 5_000 }),
  /**
   * Put every attempt in a cgroup of its own where cgroup v2 is writable, so `cgroup.kill` ends what left
   * the session (`setsid`, double forks). Off, or where it is not writable, a scan of every `/proc/<pid>/environ`
   * for the attempt's `WARDEN_ATTEMPT` finds them instead.
   */
  agentCgroups: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * Where the daemon keeps its queue and session snapshots: `files` under the workspace's `state/` (the
   * default: a restart resumes every session), or `memory` (nothing survives the daemon: for tests and
   * throwaway daemons). A database will be a third.
   */
  storage: Schema.optionalWith(Schema.Literal("files", "memory"), { default: () => "files" as const }),
  minFreeDiskMb: Schema.optionalWith(Schema.Int, { default: () => 1_024 }),
  minFreeMemoryMb: Schema.optionalWith(Schema.Int, { default: () => 512 }),
  defaults: Schema.optionalWith(DefaultsSchema, { default: () => Schema.decodeSync(DefaultsSchema)({}) }),
  verification: Schema.optionalWith(VerificationSchema, { default: () => Schema.decodeSync(VerificationSchema)({}) }),
  profiles: Schema.optionalWith(Schema.Record({ key: Schema.String, value: ProfileSchema }), { default: () => ({}) }),
  argus: Schema.optionalWith(ArgusSchema, { default: () => Schema.decodeSync(ArgusSchema)({}) }),
  /**
   * Also send the actor tree's machine events, in `@statelyai/inspect`'s shape, to a websocket server such as
   * `npx @statelyai/inspect`'s `createInspectorServer` (`ws://localhost:8080`), so Stately's inspector shows the
   * machines live. Off when absent. Contexts and event payloads are never sent.
   */
  statelyInspector: Schema.optional(Schema.Struct({ url: WebsocketUrl })),
  dashboard: Schema.optionalWith(DashboardSchema, { default: () => Schema.decodeSync(DashboardSchema)({}) }),
  /**
   * The sessions' notifying step: a command run once per finished attempt with the seed's wake text
   * (`Agent <bead> <status> (<s>s, <agent>, attempt <n>/<max>, reason: <reason>)`) as `{text}`, e.g.
   * `["openclaw", "cron", "wake", "{text}"]`; an argv, never a shell. Its delivery is in the run record; a
   * failure never fails the bead.
   */
  notify: Schema.optionalWith(
    Schema.Struct({
      command: Schema.optional(Schema.Struct({ argv: Schema.NonEmptyArray(Schema.String), timeoutMs: Schema.optionalWith(Millis, { default: () => 10_000 }) }))
    }),
    { default: () => ({}) }
  ),
  alerts: Schema.optionalWith(AlertsSchema, { default: () => Schema.decodeSync(AlertsSchema)({}) }),
  /** Long-lived services the daemon supervises (`warden services`), by name. */
  services: Schema.optionalWith(
    Schema.Record({
      key: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9-]{0,39}$/, { message: () => "a service name is lowercase letters, digits and -, at most 40" })),
      value: ServiceSchema
    }),
    { default: () => ({}) }
  )
})

export type WardenConfig = typeof ConfigSchema.Type
export type WardenConfigInput = typeof ConfigSchema.Encoded
