import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"

/**
 * The dashboard's login: one-time login codes (handed out to a holder of the
 * API token by `POST /v1/dashboard/login`) and the browser sessions a code
 * opens. Codes and session ids are 32 random bytes (base64url) kept only as
 * their SHA-256, never written anywhere; the memory implementation below
 * forgets everything when the daemon stops (a restart ends every session).
 * A database implementation can take its place behind the same tag.
 */

/** How long a login code and a session live; compiled from the config's `dashboard` section. */
export interface DashboardLifetimes {
  /** A login code is refused this long after it was issued (and after its first use). */
  readonly loginCodeMs: number
  /** A session no request used for this long is over. */
  readonly sessionIdleMs: number
  /** A session is over this long after its login, however busy. */
  readonly sessionMaxMs: number
}

/** A login code, as handed out once: only its hash is kept. */
export interface LoginCode {
  readonly code: string
  readonly expiresAt: number
}

/** A live session as a request sees it: its CSRF token and when it ends if unused (idle or absolute, whichever is first). */
export interface SessionView {
  readonly csrf: string
  readonly expiresAt: number
}

/** A session just opened by a login code: `id` is the cookie's value, returned this once. */
export interface OpenedSession extends SessionView {
  readonly id: string
  /** When the session ends however busy it is (the cookie's Max-Age). */
  readonly endsAt: number
}

/** Why a login code was refused: `unknown` (never issued, or forgotten), `used` (a code works once), `expired`. */
export class LoginRefused extends Schema.TaggedError<LoginRefused>()("LoginRefused", {
  reason: Schema.Literal("unknown", "used", "expired")
}) {
  override get message(): string {
    return this.reason === "used"
      ? "this login link was already used"
      : this.reason === "expired"
        ? "this login link has expired"
        : "this login link is not valid"
  }
}

/** Login codes and sessions. */
export class DashboardAuth extends Context.Tag("warden/DashboardAuth")<
  DashboardAuth,
  {
    readonly lifetimes: DashboardLifetimes
    /** A new single-use login code. */
    readonly issueCode: Effect.Effect<LoginCode>
    /** Uses a code up and opens a session. */
    readonly redeem: (code: string) => Effect.Effect<OpenedSession, LoginRefused>
    /** The live session with this id (its idle time restarts), or none. */
    readonly session: (id: string) => Effect.Effect<Option.Option<SessionView>>
    /** Ends a session; true if it was live. */
    readonly end: (id: string) => Effect.Effect<boolean>
  }
>() {}

/** 32 random bytes as base64url: a code, a session id, a CSRF token. */
export const randomSecret = (): string => randomBytes(32).toString("base64url")

const hashOf = (secret: string): string => createHash("sha256").update(secret).digest("hex")

/** Compares two secrets in constant time (hashed first, so their lengths never leak). */
export const secretsMatch = (given: string | undefined, expected: string): boolean =>
  given !== undefined && expected !== "" && timingSafeEqual(createHash("sha256").update(given).digest(), createHash("sha256").update(expected).digest())

interface StoredCode {
  readonly expiresAt: number
  used: boolean
}

interface StoredSession {
  readonly csrf: string
  readonly endsAt: number
  lastUsed: number
}

/** Codes and sessions in this process's memory; time comes from Effect's `Clock` (so `TestClock` drives it in tests). */
export const makeMemoryDashboardAuth = (lifetimes: DashboardLifetimes): DashboardAuth["Type"] => {
  const codes = new Map<string, StoredCode>()
  const sessions = new Map<string, StoredSession>()
  const expiryOf = (session: StoredSession) => Math.min(session.lastUsed + lifetimes.sessionIdleMs, session.endsAt)
  // Whatever has expired is dropped on every call, so neither map grows with time.
  const sweep = (now: number) => {
    for (const [hash, code] of codes) if (now >= code.expiresAt) codes.delete(hash)
    for (const [hash, session] of sessions) if (now >= expiryOf(session)) sessions.delete(hash)
  }
  return {
    lifetimes,
    issueCode: Effect.map(Clock.currentTimeMillis, (now) => {
      sweep(now)
      const code = randomSecret()
      const expiresAt = now + lifetimes.loginCodeMs
      codes.set(hashOf(code), { expiresAt, used: false })
      return { code, expiresAt }
    }),
    redeem: (code) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const stored = codes.get(hashOf(code))
        if (stored !== undefined && now >= stored.expiresAt) {
          codes.delete(hashOf(code))
          return Effect.fail(new LoginRefused({ reason: "expired" }))
        }
        sweep(now)
        if (stored === undefined) return Effect.fail(new LoginRefused({ reason: "unknown" }))
        if (stored.used) return Effect.fail(new LoginRefused({ reason: "used" }))
        // Kept (used) until it expires, so a second use is told why.
        stored.used = true
        const id = randomSecret()
        const session: StoredSession = { csrf: randomSecret(), endsAt: now + lifetimes.sessionMaxMs, lastUsed: now }
        sessions.set(hashOf(id), session)
        return Effect.succeed({ id, csrf: session.csrf, expiresAt: expiryOf(session), endsAt: session.endsAt })
      }),
    session: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
        const session = sessions.get(hashOf(id))
        if (session === undefined) return Option.none()
        session.lastUsed = now
        return Option.some({ csrf: session.csrf, expiresAt: expiryOf(session) })
      }),
    end: (id) => Effect.sync(() => sessions.delete(hashOf(id)))
  }
}

export const memoryDashboardAuthLayer = (lifetimes: DashboardLifetimes) => Layer.sync(DashboardAuth, () => makeMemoryDashboardAuth(lifetimes))
