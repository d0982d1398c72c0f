import { Schema } from "effect"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import { keyProblem } from "../terminals/keyNames.js"

/** A bead id as the beads tracker writes it (no path separators, no leading dot). */
export const BeadId = Schema.String.pipe(
  Schema.pattern(BEAD_ID, { message: () => `a bead id must match ${BEAD_ID.source}` })
)

const Text = Schema.String.pipe(Schema.maxLength(100_000))

/** `POST /v1/dispatch` */
export const DispatchBody = Schema.Struct({
  bead: BeadId,
  repo: Schema.NonEmptyString,
  agent: Schema.NonEmptyString,
  /** 0 (most urgent) to 4, as the beads tracker numbers them; default 2. */
  priority: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 4)), { default: () => 2 }),
  template: Schema.optional(Schema.NonEmptyString),
  prompt: Schema.optional(Text),
  title: Schema.optional(Text),
  acceptance: Schema.optional(Text),
  command: Schema.optional(Text),
  timeoutSeconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  stallSeconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  maxRetries: Schema.optional(Schema.Int.pipe(Schema.between(1, 20)))
})
export type DispatchBody = typeof DispatchBody.Type

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

/** `POST /v1/sessions/:bead/cancel` and `/retry` take no fields. */
export const EmptyBody = Schema.Struct({})
