import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Either, Layer, Schema } from "effect"
import { formatIssues } from "../config/formatIssues.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { DispatchBody } from "../sessions/dispatchBody.js"

/** Why a kept dispatch request could not be kept or read back: `io` (the store failed), `invalid` (what it holds is not a dispatch request). */
export const RequestErrorReason = Schema.Literal("io", "invalid")

export class RequestError extends Schema.TaggedError<RequestError>()("RequestError", {
  bead: Schema.String,
  reason: RequestErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * Each bead's last dispatch request, kept so `retry` can send it again
 * (`state/requests/<bead>.json`; retention removes it after `stateDays`).
 * What is read back is decoded as a dispatch body again: a file edited or
 * torn on disk is refused, never dispatched as it is.
 */
export class DispatchRequests extends Context.Tag("warden/DispatchRequests")<
  DispatchRequests,
  {
    readonly keep: (body: DispatchBody) => Effect.Effect<void, RequestError>
    /** The bead's kept request, or null when none is kept. */
    readonly find: (bead: string) => Effect.Effect<DispatchBody | null, RequestError>
  }
>() {}

const decode = (bead: string, text: string): Either.Either<DispatchBody, RequestError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(new RequestError({ bead, reason: "invalid", detail: `the kept request of ${bead} is not JSON: ${(error as Error).message}` }))
  }
  return Schema.decodeUnknownEither(DispatchBody)(json).pipe(
    Either.mapLeft(
      (issue) =>
        new RequestError({
          bead,
          reason: "invalid",
          detail: `the kept request of ${bead} is not a dispatch request: ${formatIssues(issue).map((i) => `${i.path === "" ? "(body)" : i.path}: ${i.message}`).join("; ")}`
        })
    )
  )
}

export const fileDispatchRequestsLayer = (dir: string) =>
  Layer.succeed(DispatchRequests, {
    keep: (body) =>
      Effect.try({
        try: () => writeFileAtomic(path.join(dir, `${body.bead}.json`), JSON.stringify(body)),
        catch: (error) => new RequestError({ bead: body.bead, reason: "io", detail: `cannot keep the request of ${body.bead}: ${(error as Error).message}` })
      }),
    find: (bead) =>
      Effect.suspend(() => {
        let text: string
        try {
          text = fs.readFileSync(path.join(dir, `${bead}.json`), "utf8")
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(null)
          return Effect.fail(new RequestError({ bead, reason: "io", detail: `cannot read the kept request of ${bead}: ${(error as Error).message}` }))
        }
        return Either.match(decode(bead, text), { onLeft: (error) => Effect.fail(error), onRight: (body) => Effect.succeed(body) })
      })
  })

export const memoryDispatchRequestsLayer = () =>
  Layer.sync(DispatchRequests, () => {
    const kept = new Map<string, string>()
    return {
      keep: (body) => Effect.sync(() => void kept.set(body.bead, JSON.stringify(body))),
      find: (bead) =>
        Effect.suspend(() => {
          const text = kept.get(bead)
          if (text === undefined) return Effect.succeed(null)
          return Either.match(decode(bead, text), { onLeft: (error) => Effect.fail(error), onRight: (body) => Effect.succeed(body) })
        })
    }
  })
