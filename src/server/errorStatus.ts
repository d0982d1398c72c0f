import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { ParseResult, Schema } from "effect"
import { DaemonError } from "../daemon/errors.js"
import { HttpError } from "./apiErrors.js"

/** Every refusal the API answers: the daemon's and the HTTP layer's. */
export const ApiRefusal = Schema.Union(...DaemonError.members, ...HttpError.members)
export type ApiRefusal = typeof ApiRefusal.Type

/**
 * The HTTP status of each refusal: the one place that maps errors to
 * statuses (a new error without a status here does not compile).
 */
export const ERROR_STATUS: { readonly [Tag in ApiRefusal["_tag"]]: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 422 | 426 | 503 } = {
  MalformedRequest: 400,
  Unauthorized: 401,
  OriginRefused: 403,
  CrossSiteRefused: 403,
  UnknownBead: 404,
  NoSession: 404,
  NoRetryRequest: 404,
  UnknownService: 404,
  NoHistory: 404,
  NoTranscript: 404,
  UnknownMachine: 404,
  ArgusDisabled: 409,
  NoSuchEndpoint: 404,
  MethodNotAllowed: 405,
  BeadBusy: 409,
  NotRunning: 409,
  AlreadyCancelling: 409,
  DaemonStopping: 409,
  RecordUnreadable: 409,
  SendFailed: 409,
  TerminalUnavailable: 409,
  BodyTooLarge: 413,
  UnknownProfile: 422,
  RepoMissing: 422,
  RepoNotAllowed: 422,
  InvalidRequest: 422,
  UpgradeRequired: 426,
  ServiceUnavailable: 503
}

export const statusOf = (error: ApiRefusal): number => ERROR_STATUS[error._tag]

/**
 * A refusal as it goes on the wire: its fields and `error`, the sentence an
 * operator reads (`{ "_tag": "UnknownBead", "bead": "bd-1", "error": "no bead
 * bd-1 in this workspace" }`), with its status from the table.
 */
export const onTheWire = <A extends ApiRefusal, I extends object>(schema: Schema.Schema<A, I>): Schema.Schema<A, I & { readonly error: string }> => {
  const fields = Schema.encodedSchema(schema) as unknown as Schema.Struct<{}>
  const wire = Schema.transformOrFail(Schema.extend(fields, Schema.Struct({ error: Schema.String })), Schema.typeSchema(schema), {
    strict: false,
    decode: ({ error: _, ...rest }) => ParseResult.decodeUnknown(schema)(rest),
    encode: (value) => ParseResult.map(ParseResult.encode(schema)(value), (encoded) => ({ ...encoded, error: value.message }))
  }).annotations(HttpApiSchema.annotations({ status: ERROR_STATUS[(schema as unknown as { identifier: ApiRefusal["_tag"] }).identifier] }))
  return wire as unknown as Schema.Schema<A, I & { readonly error: string }>
}
