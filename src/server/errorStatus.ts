import type { DaemonError } from "../daemon/errors.js"

/**
 * The HTTP status of each refusal of the daemon: the one place that maps the
 * daemon's domain errors to statuses (a new error without a status here does
 * not compile).
 */
export const ERROR_STATUS: { readonly [Tag in DaemonError["_tag"]]: 404 | 409 | 422 | 503 } = {
  UnknownBead: 404,
  NoSession: 404,
  NoRetryRequest: 404,
  BeadBusy: 409,
  NotRunning: 409,
  AlreadyCancelling: 409,
  DaemonStopping: 409,
  RecordUnreadable: 409,
  SendFailed: 409,
  UnknownProfile: 422,
  RepoMissing: 422,
  RepoNotAllowed: 422,
  InvalidRequest: 422,
  ServiceUnavailable: 503
}

export const statusOf = (error: DaemonError): number => ERROR_STATUS[error._tag]
