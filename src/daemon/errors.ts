import { Schema } from "effect"

/**
 * What the daemon refuses, as values. Each error carries the facts of the
 * refusal as fields, and its `message` is the sentence an operator reads (the
 * API answers it as `{ "error": message }`; the README quotes these words).
 * No error here knows an HTTP status: the API chooses it, in one table
 * (`src/server/errorStatus.ts`).
 */

/** The workspace has no such bead: no session, no records. */
export class UnknownBead extends Schema.TaggedError<UnknownBead>()("UnknownBead", { bead: Schema.String }) {
  override get message(): string {
    return `no bead ${this.bead} in this workspace`
  }
}

/** Why a bead cannot be dispatched (or retried) now: something already runs it. */
export const BusyReason = Schema.Union(
  /** This daemon supervises a session of the bead that is not over. */
  Schema.TaggedStruct("Dispatched", { state: Schema.String }),
  /** Another supervisor (a foreground `warden dispatch --wait`, another daemon) runs it. */
  Schema.TaggedStruct("SupervisedElsewhere", { pid: Schema.Number }),
  /** A retry was asked for while the bead's session still runs. */
  Schema.TaggedStruct("StillRunning", {})
)
export type BusyReason = typeof BusyReason.Type

export class BeadBusy extends Schema.TaggedError<BeadBusy>()("BeadBusy", { bead: Schema.String, reason: BusyReason }) {
  override get message(): string {
    switch (this.reason._tag) {
      case "Dispatched":
        return `bead ${this.bead} is already dispatched (state ${this.reason.state})`
      case "SupervisedElsewhere":
        return `bead ${this.bead} is being supervised by pid ${this.reason.pid}`
      case "StillRunning":
        return `${this.bead} is still running`
    }
  }
}

/** The bead has records but its session is over (cancel, input). */
export class NotRunning extends Schema.TaggedError<NotRunning>()("NotRunning", { bead: Schema.String, ended: Schema.String }) {
  override get message(): string {
    return `${this.bead} is not running (it ended ${this.ended})`
  }
}

/** The daemon supervises no session of the bead (signal, terminal stream). */
export class NoSession extends Schema.TaggedError<NoSession>()("NoSession", { bead: Schema.String }) {
  override get message(): string {
    return `${this.bead} has no running session`
  }
}

export class AlreadyCancelling extends Schema.TaggedError<AlreadyCancelling>()("AlreadyCancelling", { bead: Schema.String }) {
  override get message(): string {
    return `${this.bead} is already being cancelled`
  }
}

export class UnknownProfile extends Schema.TaggedError<UnknownProfile>()("UnknownProfile", {
  profile: Schema.String,
  configured: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `unknown agent profile "${this.profile}"; configured: ${[...this.configured].sort().join(", ")}`
  }
}

export class RepoMissing extends Schema.TaggedError<RepoMissing>()("RepoMissing", { repo: Schema.String }) {
  override get message(): string {
    return `repo ${this.repo} does not exist`
  }
}

export class RepoNotAllowed extends Schema.TaggedError<RepoNotAllowed>()("RepoNotAllowed", {
  repo: Schema.String,
  allowedRoots: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `repo ${this.repo} is not under an allowed root (${this.allowedRoots.join(", ")})`
  }
}

export class DaemonStopping extends Schema.TaggedError<DaemonStopping>()("DaemonStopping", {}) {
  override get message(): string {
    return "the daemon is stopping; dispatch again once it is back"
  }
}

/** A request that is well-formed but cannot be carried out as given (the dispatch spec, operator input): `problem` says why. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", { problem: Schema.String }) {
  override get message(): string {
    return this.problem
  }
}

/** `retry` of a bead whose dispatch request is not kept (dispatched by a foreground CLI, or past retention). */
export class NoRetryRequest extends Schema.TaggedError<NoRetryRequest>()("NoRetryRequest", { bead: Schema.String }) {
  override get message(): string {
    return `no dispatch request of ${this.bead} is kept in this workspace (retry knows beads dispatched through a daemon here, for retention.stateDays): dispatch it again`
  }
}

export class RecordUnreadable extends Schema.TaggedError<RecordUnreadable>()("RecordUnreadable", {
  bead: Schema.String,
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `the record ${this.file} of ${this.bead} is unreadable: ${this.reason}`
  }
}

/** Operator input that tmux did not take (the session went away, tmux refused). */
export class SendFailed extends Schema.TaggedError<SendFailed>()("SendFailed", { session: Schema.String, reason: Schema.String }) {
  override get message(): string {
    return `could not send to ${this.session}: ${this.reason}`
  }
}

/** A service the operation needs failed (a queue or snapshot file that cannot be written, tmux gone). */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", { reason: Schema.String }) {
  override get message(): string {
    return `the daemon cannot do this now: ${this.reason}`
  }
}

/** No service of that name is configured (`services.<name>` in the config). */
export class UnknownService extends Schema.TaggedError<UnknownService>()("UnknownService", {
  name: Schema.String,
  configured: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return this.configured.length === 0
      ? `no service ${this.name}: none is configured (services.<name> in the config)`
      : `no service ${this.name}; configured: ${[...this.configured].sort().join(", ")}`
  }
}

/** Argus is not enabled in the config (`argus.enabled`). */
export class ArgusDisabled extends Schema.TaggedError<ArgusDisabled>()("ArgusDisabled", {}) {
  override get message(): string {
    return "Argus is not enabled: set argus.enabled in the config and restart the daemon"
  }
}

/** The daemon never ran a session of this bead, so it has no machine history (`state/history/<bead>.jsonl`). */
export class NoHistory extends Schema.TaggedError<NoHistory>()("NoHistory", { bead: Schema.String }) {
  override get message(): string {
    return `no machine history for bead ${this.bead}: each session of it, run by the daemon or by dispatch --wait, writes one`
  }
}

/** The bead's record names no transcript in the workspace (never launched, or removed by retention). */
export class NoTranscript extends Schema.TaggedError<NoTranscript>()("NoTranscript", { bead: Schema.String }) {
  override get message(): string {
    return `no transcript of bead ${this.bead} is kept in the workspace`
  }
}

/** Every refusal of the daemon's operations. */
export const DaemonError = Schema.Union(
  UnknownBead,
  BeadBusy,
  NotRunning,
  NoSession,
  AlreadyCancelling,
  UnknownProfile,
  RepoMissing,
  RepoNotAllowed,
  DaemonStopping,
  InvalidRequest,
  NoRetryRequest,
  RecordUnreadable,
  SendFailed,
  ServiceUnavailable,
  UnknownService,
  ArgusDisabled,
  NoHistory,
  NoTranscript
)
export type DaemonError = typeof DaemonError.Type

export const isDaemonError = (error: unknown): error is DaemonError => DaemonError.members.some((member) => error instanceof member)
