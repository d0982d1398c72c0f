import { Schema } from "effect"
import { Text } from "../sessions/dispatchBody.js"
import { keyProblem } from "../terminals/keyNames.js"

/** `POST /v1/sessions/:bead/signal` */
export const SignalBody = Schema.Struct({
  status: Schema.Literal("done", "failed", "waiting"),
  summary: Schema.optional(Text),
  attempt_id: Schema.NullOr(Schema.String).pipe(Schema.optional)
})

/** `POST /v1/sessions/:bead/input` */
export const InputBody = Schema.Struct({
  text: Schema.optional(Text),
  /** tmux key names only (`keyProblem` says why one is not): never an option of `send-keys`. */
  keys: Schema.optional(Schema.Array(Schema.String.pipe(Schema.filter((key) => keyProblem(key) ?? true))).pipe(Schema.maxItems(100))),
  enter: Schema.optionalWith(Schema.Boolean, { default: () => true })
})

/** `POST /v1/drain` */
export const DrainBody = Schema.Struct({ on: Schema.Boolean })

/**
 * `POST /v1/sessions/:bead/cancel` and `/retry` take no fields. (An empty `Schema.Struct({})` takes any
 * object, excess properties included, whatever `onExcessProperty` says: so the check is its own.)
 */
export const EmptyBody = Schema.Struct({}).pipe(
  Schema.filter((body) => Object.keys(body).length === 0 || `this request takes no fields; got ${Object.keys(body).join(", ")}`, {
    jsonSchema: { type: "object", additionalProperties: false }
  })
)
