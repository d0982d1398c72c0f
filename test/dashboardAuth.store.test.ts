import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { DashboardAuth, memoryDashboardAuthLayer } from "../src/server/dashboardAuth.js"

/** The dashboard's login codes and sessions (memory implementation), on Effect's TestClock. */
const lifetimes = { loginCodeMs: 60_000, sessionIdleMs: 10 * 60_000, sessionMaxMs: 60 * 60_000 }
const withAuth = <A, E>(body: (auth: DashboardAuth["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(DashboardAuth, body).pipe(Effect.provide(memoryDashboardAuthLayer(lifetimes)))

describe("DashboardAuth (memory)", () => {
  it.effect("a login code opens one session, once, within its 60 s", () =>
    withAuth((auth) =>
      Effect.gen(function* () {
        const first = yield* auth.issueCode
        expect(first.code).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(first.expiresAt).toBe(60_000)
        const session = yield* auth.redeem(first.code)
        expect(session.id).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(session.csrf).not.toBe(session.id)
        expect(session.endsAt).toBe(lifetimes.sessionMaxMs)
        expect((yield* Effect.flip(auth.redeem(first.code))).reason).toBe("used")
        expect((yield* Effect.flip(auth.redeem("never-issued"))).reason).toBe("unknown")
        const second = yield* auth.issueCode
        yield* TestClock.adjust(59_999)
        const third = yield* auth.issueCode
        expect((yield* auth.redeem(second.code)).id).not.toBe(session.id)
        yield* TestClock.adjust(60_000)
        expect((yield* Effect.flip(auth.redeem(third.code))).reason).toBe("expired")
      })
    )
  )

  it.effect("a session ends after its idle time, and after its absolute lifetime however busy; ending it ends it", () =>
    withAuth((auth) =>
      Effect.gen(function* () {
        const idle = yield* auth.redeem((yield* auth.issueCode).code)
        const busy = yield* auth.redeem((yield* auth.issueCode).code)
        const ended = yield* auth.redeem((yield* auth.issueCode).code)
        expect(yield* auth.end(ended.id)).toBe(true)
        expect(Option.isNone(yield* auth.session(ended.id))).toBe(true)
        // Used every 9 minutes, the busy one outlives the idle one's 10 minutes...
        for (let minute = 9; minute <= 54; minute += 9) {
          yield* TestClock.adjust(9 * 60_000)
          const view = yield* auth.session(busy.id)
          expect(Option.getOrThrow(view).csrf).toBe(busy.csrf)
          expect(Option.getOrThrow(view).expiresAt).toBe(Math.min(minute * 60_000 + lifetimes.sessionIdleMs, lifetimes.sessionMaxMs))
        }
        expect(Option.isNone(yield* auth.session(idle.id))).toBe(true)
        // ...but not its hour.
        yield* TestClock.adjust(6 * 60_000)
        expect(Option.isNone(yield* auth.session(busy.id))).toBe(true)
        expect(Option.isNone(yield* auth.session("not-a-session"))).toBe(true)
      })
    )
  )
})
