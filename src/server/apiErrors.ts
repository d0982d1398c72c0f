import { Schema } from "effect"

/**
 * The refusals of the HTTP layer itself (before or around the daemon's
 * operations). Like the daemon's errors they hold no status: `errorStatus.ts`
 * gives every refusal its status, in one table.
 */

/** No token, a wrong one, or a scheme other than Bearer. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  /** `missing`: no bearer token was sent; `wrong`: one was, and it is not the daemon's. */
  reason: Schema.Literal("missing", "wrong")
}) {
  override get message(): string {
    return this.reason === "wrong"
      ? "the bearer token is not this daemon's (the token is in state/api-token of the daemon's workspace)"
      : "a bearer token is required (Authorization: Bearer <the token in state/api-token>)"
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

export const HttpError = Schema.Union(Unauthorized, OriginRefused, MalformedRequest, NoSuchEndpoint, MethodNotAllowed, UpgradeRequired, BodyTooLarge, TerminalUnavailable)
export type HttpError = typeof HttpError.Type
