import { Schema } from "effect"

/**
 * Why a service operation failed:
 * - `spawn-failed`: the program could not be started (not found, not executable, no such working directory);
 * - `not-found`: no such process, unit or service;
 * - `command-failed`: a command (such as `systemctl`) ran and reported a failure;
 * - `invalid-unit`: a systemd unit name that is not a plain `NAME.service`;
 * - `io`: a file the service needs (its log, its folder) could not be opened or written.
 */
export const ServiceErrorReason = Schema.Literal("spawn-failed", "not-found", "command-failed", "invalid-unit", "io")
export type ServiceErrorReason = typeof ServiceErrorReason.Type

/** A supervised service could not be started, found or controlled; `detail` says what and why, in words. */
export class ServiceError extends Schema.TaggedError<ServiceError>()("ServiceError", {
  reason: ServiceErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}
