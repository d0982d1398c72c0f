import { Schema } from "effect"
import { BEAD_ID } from "./dispatchSpec.js"
import type { DispatchRequest } from "./buildSpec.js"

/** A bead id as the beads tracker writes it (no path separators, no leading dot). */
export const BeadId = Schema.String.pipe(
  Schema.pattern(BEAD_ID, { message: () => `a bead id must match ${BEAD_ID.source}` })
)

/** A free-text field of a request body, bounded. */
export const Text = Schema.String.pipe(Schema.maxLength(100_000))

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

/** The request a dispatch body makes (an API body names its limits in seconds; the spec wants milliseconds). */
export const requestOfBody = (body: DispatchBody): DispatchRequest => ({
  bead: body.bead,
  repo: body.repo,
  agent: body.agent,
  template: body.template,
  prompt: body.prompt,
  promptFile: undefined,
  title: body.title,
  acceptance: body.acceptance,
  command: body.command,
  overrides: {
    timeoutMs: body.timeoutSeconds === undefined ? undefined : body.timeoutSeconds * 1000,
    stallMs: body.stallSeconds === undefined ? undefined : body.stallSeconds * 1000,
    maxAttempts: body.maxRetries
  }
})
