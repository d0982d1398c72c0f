import { Schema } from "effect"

/**
 * Why a systemd unit could not be read or acted on:
 * - `invalid-unit`: the name is not a plain `.service` unit name; nothing was run;
 * - `spawn-failed`: `systemctl` could not be run at all (not on PATH, not executable);
 * - `command-failed`: `systemctl` ran and exited non-zero (or timed out): its stderr is in `detail`;
 * - `unparseable`: `systemctl show` printed something other than the properties asked for.
 */
export const SystemdErrorReason = Schema.Literal("invalid-unit", "command-failed", "spawn-failed", "unparseable")
export type SystemdErrorReason = typeof SystemdErrorReason.Type

/** A systemd unit could not be shown, restarted, started or stopped; `detail` says why, naming the unit. */
export class SystemdError extends Schema.TaggedError<SystemdError>()("SystemdError", {
  unit: Schema.String,
  reason: SystemdErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}
