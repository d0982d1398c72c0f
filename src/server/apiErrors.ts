import { Schema } from "effect"

/**
 * The refusals of the HTTP layer itself (before or around the daemon's
 * operations). Like the daemon's errors they hold no status: `errorStatus.ts`
 * gives every refusal its status, in one table.
 */

/** No token, a wrong one, or a scheme other than Bearer. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  /**
   * `missing`: no bearer token was sent (nor a session cookie); `wrong`: one was, and it is not the daemon's;
   * `session`: the dashboard's session cookie is unknown or has expired (or this endpoint needs one).
   */
  reason: Schema.Literal("missing", "wrong", "session")
}) {
  override get message(): string {
    return this.reason === "wrong"
      ? "the bearer token is not this daemon's (the token is in state/api-token of the daemon's workspace)"
      : this.reason === "session"
        ? "no live dashboard session: run `warden dashboard` for a new login link"
        : "a bearer token is required (Authorization: Bearer <the token in state/api-token>)"
  }
}

/**
 * A request authenticated by the dashboard's session cookie that changes state (or opens a websocket) and
 * does not show it comes from the dashboard itself: `origin` (its Origin, Sec-Fetch-Site or Referer is not
 * the daemon's own origin, or it says none), `csrf` (no X-Warden-CSRF header, or not this session's token).
 */
export class CrossSiteRefused extends Schema.TaggedError<CrossSiteRefused>()("CrossSiteRefused", {
  reason: Schema.Literal("origin", "csrf")
}) {
  override get message(): string {
    return this.reason === "origin"
      ? "a request with the dashboard's session cookie that changes state must come from the dashboard's own origin"
      : "the X-Warden-CSRF header is missing or is not this session's token (GET /v1/dashboard/session gives it)"
  }
}

/** A browser origin not given with `--allow-origin`. */
export class OriginRefused extends Schema.TaggedError<OriginRefused>()("OriginRefused", { origin: Schema.String }) {
  override get message(): string {
    return `origin ${this.origin} is not allowed`
  }
}

/** A request the server cannot parse: its target, a path segment's percent-encoding, a bead id, a body that is not JSON. */
export class MalformedRequest extends Schema.TaggedError<MalformedRequest>()("MalformedRequest", { problem: Schema.String }) {
  override get message(): string {
    return this.problem
  }
}

export class NoSuchEndpoint extends Schema.TaggedError<NoSuchEndpoint>()("NoSuchEndpoint", { path: Schema.String }) {
  override get message(): string {
    return `no such endpoint: ${this.path}`
  }
}

export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  method: Schema.String,
  path: Schema.String,
  allowed: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.method} is not allowed on ${this.path}: use ${this.allowed.join(" or ")}`
  }
}

/** A websocket endpoint asked for without `Upgrade: websocket`. */
export class UpgradeRequired extends Schema.TaggedError<UpgradeRequired>()("UpgradeRequired", { path: Schema.String }) {
  override get message(): string {
    return `${this.path} is a websocket: connect with Upgrade: websocket`
  }
}

export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", { bytes: Schema.NullOr(Schema.Number), limit: Schema.Number }) {
  override get message(): string {
    return this.bytes === null ? `the body is over ${this.limit} bytes` : `the body is ${this.bytes} bytes; at most ${this.limit} are accepted`
  }
}

/** A bead's session is supervised but its tmux session is not there (not yet made, or already ended): no live terminal to show. */
export class TerminalUnavailable extends Schema.TaggedError<TerminalUnavailable>()("TerminalUnavailable", { bead: Schema.String, session: Schema.String }) {
  override get message(): string {
    return `${this.bead} has no live terminal: its tmux session ${this.session} is not running`
  }
}

/** `warden viz`'s machines are agentSession, supervisor, service and argus: another name is refused with them. */
export class UnknownMachine extends Schema.TaggedError<UnknownMachine>()("UnknownMachine", { name: Schema.String, machines: Schema.Array(Schema.String) }) {
  override get message(): string {
    return `no machine ${this.name}: the machines are ${this.machines.join(", ")}`
  }
}

export const HttpError = Schema.Union(Unauthorized, OriginRefused, CrossSiteRefused, MalformedRequest, NoSuchEndpoint, MethodNotAllowed, UpgradeRequired, BodyTooLarge, TerminalUnavailable, UnknownMachine)
export type HttpError = typeof HttpError.Type
