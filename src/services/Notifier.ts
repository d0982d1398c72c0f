import { createHmac } from "node:crypto"
import { Cause, Context, Duration, Effect, Layer, Schedule } from "effect"
import { Processes, ProcessesLive } from "../processes/Processes.js"

/** One alert: `problem` is the dedup key ("service gateway failed"), `text` what the operator reads, `at` when (ms). */
export interface Alert {
  readonly problem: string
  readonly text: string
  readonly at: number
}

/** The channels an alert can go out on. */
export type NotifierChannel = "telegram" | "webhook" | "command"

/** What became of an alert on one channel: delivered, deduplicated, or why not (never holding a secret). */
export interface Delivery {
  readonly channel: NotifierChannel
  readonly ok: boolean
  readonly detail: string
}

/** Telegram's Bot API `sendMessage`; the token and the chat come from the environment, never from the config file. */
export interface TelegramChannelConfig {
  /** Default `https://api.telegram.org`; a test points it at a local stand-in. */
  readonly baseUrl: string
  /** The environment variable holding the bot token; default `TELEGRAM_BOT_TOKEN`. */
  readonly tokenEnv: string
  /** The environment variable holding the chat id; default `TELEGRAM_CHAT_ID`. */
  readonly chatEnv: string
}

/** A JSON POST `{problem, text, at}` signed with `X-Warden-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
export interface WebhookChannelConfig {
  readonly url: string
  /** The environment variable holding the HMAC secret; default `WARDEN_WEBHOOK_SECRET`. */
  readonly secretEnv: string
  /** Tries in all (default 3); a network error or a 5xx is tried again, a 4xx is not. */
  readonly attempts: number
  /** The wait before the second try (default 500), doubling before each later one. */
  readonly backoffMs: number
}

/** A program run with an argv, never through a shell; `{text}` in any argument is replaced by the alert's text. */
export interface CommandChannelConfig {
  /** For example `["openclaw", "message", "send", "{text}"]`. */
  readonly argv: ReadonlyArray<string>
  /** Killed (its whole process group) after this; default 10000. */
  readonly timeoutMs: number
}

/** The alert channels, each optional; an alert goes out on every configured one. */
export interface NotifierConfig {
  readonly telegram?: TelegramChannelConfig
  readonly webhook?: WebhookChannelConfig
  readonly command?: CommandChannelConfig
  /** The same `problem` is sent once per this window (default 3600000, an hour). */
  readonly dedupMs: number
}

/** The defaults the config schema fills in. */
export const NOTIFIER_DEFAULTS = {
  telegram: { baseUrl: "https://api.telegram.org", tokenEnv: "TELEGRAM_BOT_TOKEN", chatEnv: "TELEGRAM_CHAT_ID" },
  webhook: { secretEnv: "WARDEN_WEBHOOK_SECRET", attempts: 3, backoffMs: 500 },
  command: { timeoutMs: 10_000 },
  dedupMs: 3_600_000
} as const

/** Every HTTP request of a channel (connect, answer and body) must finish within this. */
const REQUEST_TIMEOUT_MS = 10_000
/** Characters of an answer's body or a command's output kept in a detail. */
const DETAIL_TAIL = 300

/**
 * Sends alerts to the operator. `notify` never fails: it answers one `Delivery` per configured channel, in the
 * order telegram, webhook, command (none configured: an empty list). An alert whose `problem` was delivered
 * within `dedupMs` is not sent again: each configured channel answers `{ok: true, detail: "deduplicated"}`.
 */
export class Notifier extends Context.Tag("warden/Notifier")<
  Notifier,
  {
    readonly notify: (alert: Alert) => Effect.Effect<ReadonlyArray<Delivery>>
  }
>() {}

export interface NotifierOptions {
  /** The clock of the dedup window (default `Date.now`). */
  readonly now?: () => number
  /** Runs the command channel (default the live `Processes`). */
  readonly processes?: Processes["Type"]
  /** The working directory of the command channel (default the daemon's). */
  readonly cwd?: string
}

/** Why a single HTTP try failed, and whether another try may help. */
interface TryFailure {
  readonly detail: string
  readonly retryable: boolean
}

const tail = (text: string): string => {
  const trimmed = text.trim()
  return trimmed.length > DETAIL_TAIL ? `...${trimmed.slice(-DETAIL_TAIL)}` : trimmed
}

const networkText = (error: unknown): string => {
  if ((error as Error).name === "TimeoutError") return `no answer within ${REQUEST_TIMEOUT_MS / 1000}s`
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error)
}

/** One POST; the answer's status and body, or a network failure (always retryable). */
const post = (url: string, headers: Record<string, string>, body: string): Effect.Effect<{ status: number; body: string }, TryFailure> =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
        redirect: "manual",
        signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
      })
      return { status: response.status, body: await response.text() }
    },
    catch: (error): TryFailure => ({ detail: networkText(error), retryable: true })
  })

/** A bot token is digits, a colon and URL-safe characters; anything else would change the URL's path. */
const BOT_TOKEN = /^[A-Za-z0-9:_-]+$/

const sendTelegram = (config: TelegramChannelConfig, env: Record<string, string | undefined>, alert: Alert): Effect.Effect<Delivery> => {
  const failed = (detail: string): Delivery => ({ channel: "telegram", ok: false, detail })
  const token = env[config.tokenEnv]
  const chat = env[config.chatEnv]
  if (token === undefined || token === "") return Effect.succeed(failed(`the environment variable ${config.tokenEnv} (the bot token) is not set`))
  if (chat === undefined || chat === "") return Effect.succeed(failed(`the environment variable ${config.chatEnv} (the chat id) is not set`))
  if (!BOT_TOKEN.test(token)) return Effect.succeed(failed(`the environment variable ${config.tokenEnv} does not hold a bot token (letters, digits, ":", "_" and "-")`))
  // The token is part of the URL: whatever is said about a failure is said with it cut out.
  const redact = (text: string) => text.split(token).join("<redacted>")
  const base = config.baseUrl.replace(/\/+$/, "")
  return post(`${base}/bot${token}/sendMessage`, {}, JSON.stringify({ chat_id: chat, text: alert.text })).pipe(
    Effect.map(({ status, body }): Delivery => {
      let answer: { ok?: unknown; description?: unknown; result?: { message_id?: unknown } } | null = null
      try {
        answer = JSON.parse(body)
      } catch {
        // not JSON: said below
      }
      if (answer !== null && answer.ok === true) {
        const id = answer.result?.message_id
        return { channel: "telegram", ok: true, detail: typeof id === "number" ? `sent (message ${id})` : "sent" }
      }
      if (answer !== null && typeof answer.description === "string") return failed(redact(`Telegram answered HTTP ${status}: ${tail(answer.description)}`))
      return failed(redact(`Telegram answered HTTP ${status} without {ok: true}: ${tail(body)}`))
    }),
    Effect.catchAll((failure) => Effect.succeed(failed(redact(`POST ${base}/bot<redacted>/sendMessage failed: ${failure.detail}`))))
  )
}

const sendWebhook = (config: WebhookChannelConfig, env: Record<string, string | undefined>, alert: Alert): Effect.Effect<Delivery> => {
  const failed = (detail: string): Delivery => ({ channel: "webhook", ok: false, detail })
  const secret = env[config.secretEnv]
  if (secret === undefined || secret === "") return Effect.succeed(failed(`the environment variable ${config.secretEnv} (the webhook secret) is not set`))
  if (!Number.isInteger(config.attempts) || config.attempts < 1) return Effect.succeed(failed(`webhook.attempts must be a whole number of at least 1, not ${config.attempts}`))
  if (!(config.backoffMs >= 0)) return Effect.succeed(failed(`webhook.backoffMs must not be negative, not ${config.backoffMs}`))
  const body = JSON.stringify({ problem: alert.problem, text: alert.text, at: alert.at })
  const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`
  let tries = 0
  const once = Effect.suspend(() => {
    tries += 1
    return post(config.url, { "x-warden-signature": signature }, body)
  }).pipe(
    Effect.flatMap(({ status, body: answer }) => {
      if (status >= 200 && status < 300) return Effect.succeed(status)
      const detail = `HTTP ${status}${answer.trim() === "" ? "" : `: ${tail(answer)}`}`
      return Effect.fail<TryFailure>({ detail, retryable: status >= 500 })
    })
  )
  const schedule = Schedule.exponential(Duration.millis(config.backoffMs), 2).pipe(Schedule.intersect(Schedule.recurs(config.attempts - 1)))
  const triesText = () => (tries === 1 ? "1 attempt" : `${tries} attempts`)
  return once.pipe(
    Effect.retry({ schedule, while: (failure) => failure.retryable }),
    Effect.map((status): Delivery => ({ channel: "webhook", ok: true, detail: `HTTP ${status} after ${triesText()}` })),
    Effect.catchAll((failure) =>
      Effect.succeed(failed(`POST ${config.url}: ${failure.detail} after ${triesText()}${failure.retryable ? "" : " (not retried: the receiver refused it)"}`))
    )
  )
}

const sendCommand = (
  config: CommandChannelConfig,
  env: Record<string, string | undefined>,
  alert: Alert,
  processes: Processes["Type"],
  cwd: string
): Effect.Effect<Delivery> => {
  const failed = (detail: string): Delivery => ({ channel: "command", ok: false, detail })
  if (config.argv.length === 0 || config.argv[0] === "") return Effect.succeed(failed("command.argv is empty: it needs at least the program"))
  if (!(config.timeoutMs > 0)) return Effect.succeed(failed(`command.timeoutMs must be positive, not ${config.timeoutMs}`))
  // split/join, not replace: a "$&" in the text must stay as it is.
  const [program, ...args] = config.argv.map((arg) => arg.split("{text}").join(alert.text))
  return processes.run(program!, args, { cwd, env, timeoutMs: config.timeoutMs, tailChars: DETAIL_TAIL }).pipe(
    Effect.map((result): Delivery => {
      const output = result.outputTail.trim() === "" ? "" : `: ${tail(result.outputTail)}`
      if (result.timedOut) return failed(`${program} was killed after ${config.timeoutMs}ms${output}`)
      if (result.exitCode === 0) return { channel: "command", ok: true, detail: `${program} exited 0` }
      const how = result.exitCode === null ? `was ended by ${result.signal}` : `exited ${result.exitCode}`
      return failed(`${program} ${how}${output}`)
    }),
    Effect.catchAll((error) => Effect.succeed(failed(`${program} could not be started: ${error.detail}`)))
  )
}

/** A channel that died (a defect) is still a failed delivery, never a failed `notify`. */
const reported = (channel: NotifierChannel, send: Effect.Effect<Delivery>): Effect.Effect<Delivery> =>
  send.pipe(Effect.catchAllCause((cause) => Effect.succeed<Delivery>({ channel, ok: false, detail: `${channel} failed unexpectedly: ${Cause.pretty(cause).split("\n")[0]}` })))

/**
 * The notifier of `config`, reading its secrets from `env`. Dedup: a problem is marked when its alert starts
 * going out (so two alerts at once send once) and unmarked if no channel delivered it (so a failed alert is sent
 * again next time instead of being swallowed for the window).
 */
export const makeNotifier = (config: NotifierConfig, env: Record<string, string | undefined>, options: NotifierOptions = {}): Notifier["Type"] => {
  const now = options.now ?? Date.now
  const processes = options.processes ?? Effect.runSync(Effect.provide(Processes, ProcessesLive))
  const cwd = options.cwd ?? process.cwd()
  const lastSent = new Map<string, number>()
  const channels: Array<[NotifierChannel, (alert: Alert) => Effect.Effect<Delivery>]> = []
  if (config.telegram !== undefined) {
    const telegram = config.telegram
    channels.push(["telegram", (alert) => sendTelegram(telegram, env, alert)])
  }
  if (config.webhook !== undefined) {
    const webhook = config.webhook
    channels.push(["webhook", (alert) => sendWebhook(webhook, env, alert)])
  }
  if (config.command !== undefined) {
    const command = config.command
    channels.push(["command", (alert) => sendCommand(command, env, alert, processes, cwd)])
  }
  const notify = (alert: Alert): Effect.Effect<ReadonlyArray<Delivery>> =>
    Effect.suspend(() => {
      if (channels.length === 0) return Effect.succeed([])
      const time = now()
      for (const [problem, at] of lastSent) if (time - at >= config.dedupMs) lastSent.delete(problem)
      if (lastSent.has(alert.problem)) {
        return Effect.succeed(channels.map(([channel]): Delivery => ({ channel, ok: true, detail: "deduplicated" })))
      }
      lastSent.set(alert.problem, time)
      return Effect.all(
        channels.map(([channel, send]) => reported(channel, send(alert))),
        { concurrency: "unbounded" }
      ).pipe(
        Effect.tap((deliveries) =>
          Effect.sync(() => {
            if (!deliveries.some((delivery) => delivery.ok) && lastSent.get(alert.problem) === time) lastSent.delete(alert.problem)
          })
        )
      )
    })
  return Notifier.of({ notify })
}

/** The live layer; its command channel runs through the `Processes` service. */
export const notifierLayer = (config: NotifierConfig, env: Record<string, string | undefined>, options: Omit<NotifierOptions, "processes"> = {}) =>
  Layer.effect(
    Notifier,
    Effect.map(Processes, (processes) => makeNotifier(config, env, { ...options, processes }))
  )

/** The channels as the config's `alerts` names them. */
export const notifierConfigOf = (alerts: {
  readonly telegram?: TelegramChannelConfig
  readonly webhook?: WebhookChannelConfig
  readonly command?: CommandChannelConfig
  readonly dedupMinutes: number
}): NotifierConfig => ({
  ...(alerts.telegram === undefined ? {} : { telegram: alerts.telegram }),
  ...(alerts.webhook === undefined ? {} : { webhook: alerts.webhook }),
  ...(alerts.command === undefined ? {} : { command: alerts.command }),
  dedupMs: alerts.dedupMinutes * 60_000
})
