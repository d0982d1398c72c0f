import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import {
  AlreadyCancelling,
  BeadBusy,
  DaemonStopping,
  InvalidRequest,
  NoRetryRequest,
  NoSession,
  NoHistory,
  NoTranscript,
  NotRunning,
  RecordUnreadable,
  RepoMissing,
  RepoNotAllowed,
  SendFailed,
  ServiceUnavailable,
  UnknownService,
  ArgusDisabled,
  UnknownBead,
  UnknownProfile
} from "../daemon/errors.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import { DispatchBody } from "../sessions/dispatchBody.js"
import { BodyTooLarge, CrossSiteRefused, MalformedRequest, MethodNotAllowed, NoSuchEndpoint, OriginRefused, TerminalUnavailable, Unauthorized, UnknownMachine, UpgradeRequired } from "./apiErrors.js"
import { DrainBody, EmptyBody, InputBody, SignalBody } from "./apiSchemas.js"
import { onTheWire } from "./errorStatus.js"

/**
 * The daemon's HTTP API, declared: every route, its body, its answers and
 * its refusals (`/v1/openapi.json` is this declaration as OpenAPI). Bodies are
 * decoded by the server itself (`decodeBody` in `httpApi.ts`) against the schemas named
 * here, so that an oversized body is a 413, a body that is not JSON a 400 and
 * a schema violation or an unknown field a 422.
 */

/** A bead id in a path: a bad one is a malformed request (400), named. */
export const BeadParam = Schema.String.pipe(
  Schema.pattern(BEAD_ID, { message: (issue) => `invalid bead id ${JSON.stringify(issue.actual)}: it must match ${BEAD_ID.source}` })
)
const beadPath = Schema.Struct({ bead: BeadParam })

/**
 * Token (or the dashboard's session cookie) and origin: on every group but health, for HTTP and websocket
 * alike (`authorize` in `httpApi.ts`).
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("Authorization", {
  failure: Schema.Union(onTheWire(Unauthorized), onTheWire(OriginRefused), onTheWire(CrossSiteRefused)),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const DispatchAccepted = Schema.Struct({ bead: Schema.String, priority: Schema.Number, queued: Schema.Number, draining: Schema.Boolean })
/** A record as `warden show --json` prints it (its schema is the records' own: `state/schemas`). */
const Record = Schema.Unknown.annotations({ description: "a run record (see state/schemas/run-record.schema.json)" })

const wire = {
  UnknownBead: onTheWire(UnknownBead),
  BeadBusy: onTheWire(BeadBusy),
  NotRunning: onTheWire(NotRunning),
  NoSession: onTheWire(NoSession),
  AlreadyCancelling: onTheWire(AlreadyCancelling),
  UnknownProfile: onTheWire(UnknownProfile),
  RepoMissing: onTheWire(RepoMissing),
  RepoNotAllowed: onTheWire(RepoNotAllowed),
  DaemonStopping: onTheWire(DaemonStopping),
  InvalidRequest: onTheWire(InvalidRequest),
  NoRetryRequest: onTheWire(NoRetryRequest),
  RecordUnreadable: onTheWire(RecordUnreadable),
  SendFailed: onTheWire(SendFailed),
  ServiceUnavailable: onTheWire(ServiceUnavailable),
  UnknownService: onTheWire(UnknownService),
  ArgusDisabled: onTheWire(ArgusDisabled),
  BodyTooLarge: onTheWire(BodyTooLarge),
  UpgradeRequired: onTheWire(UpgradeRequired),
  TerminalUnavailable: onTheWire(TerminalUnavailable),
  NoHistory: onTheWire(NoHistory),
  NoTranscript: onTheWire(NoTranscript),
  UnknownMachine: onTheWire(UnknownMachine)
}

const withBody = <Name extends string, S extends Schema.Schema.Any>(endpoint: HttpApiEndpoint.HttpApiEndpoint<Name, "POST">, body: S) =>
  endpoint.setPayload(body).addError(wire.BodyTooLarge).addError(wire.InvalidRequest)

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/healthz").addSuccess(
    Schema.Struct({
      ok: Schema.Boolean,
      pid: Schema.Number,
      uptime_seconds: Schema.Number,
      sessions: Schema.Number,
      running: Schema.Number,
      concurrency: Schema.Number,
      draining: Schema.Boolean,
      quarantined: Schema.Array(Schema.Unknown)
    })
  )
) {}

export class DispatchGroup extends HttpApiGroup.make("dispatch")
  .add(
    withBody(HttpApiEndpoint.post("dispatch", "/v1/dispatch"), DispatchBody)
      .addSuccess(DispatchAccepted, { status: 202 })
      .addError(wire.DaemonStopping)
      .addError(wire.BeadBusy)
      .addError(wire.UnknownProfile)
      .addError(wire.RepoMissing)
      .addError(wire.RepoNotAllowed)
      .addError(wire.ServiceUnavailable)
  )
  .add(withBody(HttpApiEndpoint.post("drain", "/v1/drain"), DrainBody).addSuccess(Schema.Struct({ draining: Schema.Boolean })))
  .add(
    HttpApiEndpoint.get("choices", "/v1/dispatch/choices").addSuccess(
      Schema.Struct({
        profiles: Schema.Array(Schema.Struct({ name: Schema.String, runs_command: Schema.Boolean })),
        templates: Schema.Array(Schema.String)
      })
    )
  )
  .add(HttpApiEndpoint.get("queue", "/v1/queue").addSuccess(Schema.Struct({ queue: Schema.Array(Schema.Unknown) })).addError(wire.ServiceUnavailable))
  .middleware(Authorization) {}

export class SessionsGroup extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.get("list", "/v1/sessions")
      .addSuccess(Schema.Struct({ sessions: Schema.Array(Record), unreadable: Schema.Array(Schema.Unknown) }))
      .addError(wire.ServiceUnavailable)
  )
  .add(
    HttpApiEndpoint.get("show", "/v1/sessions/:bead")
      .setPath(beadPath)
      .addSuccess(Schema.Struct({ run: Record, result: Schema.NullOr(Record) }))
      .addError(wire.UnknownBead)
      .addError(wire.RecordUnreadable)
      .addError(wire.ServiceUnavailable)
  )
  .add(
    withBody(HttpApiEndpoint.post("cancel", "/v1/sessions/:bead/cancel"), EmptyBody)
      .setPath(beadPath)
      .addSuccess(Schema.Struct({ bead: Schema.String, cancelled: Schema.Literal(true) }), { status: 202 })
      .addError(wire.UnknownBead)
      .addError(wire.NotRunning)
      .addError(wire.AlreadyCancelling)
      .addError(wire.ServiceUnavailable)
  )
  .add(
    withBody(HttpApiEndpoint.post("retry", "/v1/sessions/:bead/retry"), EmptyBody)
      .setPath(beadPath)
      .addSuccess(DispatchAccepted, { status: 202 })
      .addError(wire.UnknownBead)
      .addError(wire.NoRetryRequest)
      .addError(wire.DaemonStopping)
      .addError(wire.BeadBusy)
      .addError(wire.UnknownProfile)
      .addError(wire.RepoMissing)
      .addError(wire.RepoNotAllowed)
      .addError(wire.ServiceUnavailable)
  )
  .add(
    withBody(HttpApiEndpoint.post("signal", "/v1/sessions/:bead/signal"), SignalBody)
      .setPath(beadPath)
      .addSuccess(Schema.Struct({ bead: Schema.String, accepted: Schema.Literal(true) }), { status: 202 })
      .addError(wire.NoSession)
  )
  .add(
    withBody(HttpApiEndpoint.post("input", "/v1/sessions/:bead/input"), InputBody)
      .setPath(beadPath)
      .addSuccess(Schema.Struct({ bead: Schema.String, sent: Schema.Literal(true) }), { status: 202 })
      .addError(wire.UnknownBead)
      .addError(wire.NotRunning)
      .addError(wire.SendFailed)
      .addError(wire.ServiceUnavailable)
  )
  .middleware(Authorization) {}

/** The websockets: `Upgrade: websocket` only (browsers may send the token as `?token=`). */
export class StreamsGroup extends HttpApiGroup.make("streams")
  .add(
    HttpApiEndpoint.get("feed", "/v1/feed")
      .setUrlParams(Schema.Struct({ topics: Schema.optional(Schema.String), since: Schema.optional(Schema.String), token: Schema.optional(Schema.String) }))
      .addSuccess(HttpApiSchema.NoContent.annotations({ description: "101 Switching Protocols: the feed's JSON events" }))
      .addError(wire.UpgradeRequired)
  )
  .add(
    HttpApiEndpoint.get("terminal", "/v1/sessions/:bead/terminal")
      .setPath(beadPath)
      .setUrlParams(Schema.Struct({ input: Schema.optional(Schema.String), token: Schema.optional(Schema.String) }))
      .addSuccess(HttpApiSchema.NoContent.annotations({ description: "101 Switching Protocols: the session's terminal, as binary frames" }))
      .addError(wire.NoSession)
      .addError(wire.UpgradeRequired)
  )
  .add(
    HttpApiEndpoint.get("tty", "/v1/sessions/:bead/tty")
      .setPath(beadPath)
      .setUrlParams(Schema.Struct({ cols: Schema.optional(Schema.String), rows: Schema.optional(Schema.String), token: Schema.optional(Schema.String) }))
      .addSuccess(
        HttpApiSchema.NoContent.annotations({
          description:
            "101 Switching Protocols: the session's live terminal (a read-only tmux client sized to the viewer), as binary frames; the viewer sends JSON text frames: resize, input (with control), control"
        })
      )
      .addError(wire.NoSession)
      .addError(wire.TerminalUnavailable)
      .addError(wire.InvalidRequest)
      .addError(wire.UpgradeRequired)
  )
  .middleware(Authorization) {}

const ServiceView = Schema.Struct({
  name: Schema.String,
  mode: Schema.Literal("process", "systemd"),
  state: Schema.String,
  pid: Schema.NullOr(Schema.Number),
  restarts: Schema.Number,
  last_exit: Schema.NullOr(Schema.Struct({ code: Schema.NullOr(Schema.Number), signal: Schema.NullOr(Schema.String), at: Schema.String })),
  health: Schema.NullOr(Schema.Struct({ ok: Schema.Boolean, detail: Schema.String, at: Schema.String })),
  since: Schema.NullOr(Schema.String)
})

/** The supervised services: their states, and the operator's verbs. */
export class ServicesGroup extends HttpApiGroup.make("services")
  .add(HttpApiEndpoint.get("services", "/v1/services").addSuccess(Schema.Struct({ services: Schema.Array(ServiceView) })))
  .add(
    withBody(HttpApiEndpoint.post("serviceCommand", "/v1/services/:name/:verb"), EmptyBody)
      .setPath(Schema.Struct({ name: Schema.String, verb: Schema.Literal("restart", "stop", "start") }))
      .addSuccess(ServiceView, { status: 202 })
      .addError(wire.UnknownService)
  )
  .middleware(Authorization) {}

const ArgusCycleView = Schema.Struct({
  at: Schema.String,
  /** Who decided: `rules`, `llm: <advisor>`, or `rules: ...` saying why the LLM was not asked or not followed. */
  decider: Schema.String,
  /** The LLM's assessment, when it gave one (never acted on). */
  assessment: Schema.optional(Schema.String),
  observations: Schema.Unknown,
  decisions: Schema.Array(
    Schema.Struct({ action: Schema.Unknown, target: Schema.Unknown, source: Schema.Literal("rules", "llm"), verdict: Schema.Literal("done", "refused", "dry-run"), reason: Schema.String })
  )
})

const MachineName = Schema.Struct({ name: Schema.String })
const DateParam = Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}$/, { message: () => "a date YYYY-MM-DD" }))
const GroupSummary = Schema.Struct({
  name: Schema.String,
  runs: Schema.Number,
  done: Schema.Number,
  pass_rate: Schema.Number,
  mean_duration_seconds: Schema.NullOr(Schema.Number),
  cost_usd: Schema.NullOr(Schema.Number)
})

/** What the dashboard reads besides the records: the machines drawn, a session's replay, the history of runs, the memory notes. */
export class ViewsGroup extends HttpApiGroup.make("views")
  .add(HttpApiEndpoint.get("machines", "/v1/machines").addSuccess(Schema.Struct({ machines: Schema.Array(Schema.String) })))
  .add(
    HttpApiEndpoint.get("machineSvg", "/v1/machines/:name/svg")
      .setPath(MachineName)
      .addSuccess(HttpApiSchema.Text({ contentType: "image/svg+xml" }).annotations({ description: "the machine drawn from its definition, as `warden viz NAME` draws it" }))
      .addError(wire.UnknownMachine)
  )
  .add(
    HttpApiEndpoint.get("machineGraph", "/v1/machines/:name/graph")
      .setPath(MachineName)
      .addSuccess(Schema.Unknown.annotations({ description: "the machine's graph and layout, as `warden viz NAME --format json` prints it" }))
      .addError(wire.UnknownMachine)
  )
  .add(
    HttpApiEndpoint.get("history", "/v1/sessions/:bead/history")
      .setPath(beadPath)
      .addSuccess(Schema.Struct({ bead: Schema.String, steps: Schema.Array(Schema.Unknown) }))
      .addError(wire.NoHistory)
      .addError(wire.RecordUnreadable)
  )
  .add(
    HttpApiEndpoint.get("transcript", "/v1/sessions/:bead/transcript")
      .setPath(beadPath)
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; charset=utf-8" }).annotations({ description: "the latest attempt's transcript (its last 16 MiB), as a download" }))
      .addError(wire.UnknownBead)
      .addError(wire.NoTranscript)
      .addError(wire.RecordUnreadable)
      .addError(wire.ServiceUnavailable)
  )
  .add(
    HttpApiEndpoint.get("runs", "/v1/history")
      .addSuccess(Schema.Struct({ runs: Schema.Array(Schema.Unknown), by_profile: Schema.Array(GroupSummary), by_template: Schema.Array(GroupSummary) }))
      .addError(wire.ServiceUnavailable)
  )
  .add(
    HttpApiEndpoint.get("memory", "/v1/memory")
      .setUrlParams(Schema.Struct({ date: Schema.optional(DateParam) }))
      .addSuccess(Schema.Struct({ date: Schema.String, text: Schema.String, dates: Schema.Array(Schema.String) }))
  )
  .middleware(Authorization) {}

/** Argus, the watchdog: its last cycles, and a cycle now. */
export class ArgusGroup extends HttpApiGroup.make("argus")
  .add(HttpApiEndpoint.get("argus", "/v1/argus").addSuccess(Schema.Struct({ enabled: Schema.Boolean, cycles: Schema.Array(ArgusCycleView) })))
  .add(withBody(HttpApiEndpoint.post("argusCycle", "/v1/argus/cycle"), EmptyBody).addSuccess(ArgusCycleView).addError(wire.ArgusDisabled))
  .middleware(Authorization) {}

export class OperationsGroup extends HttpApiGroup.make("operations")
  .add(HttpApiEndpoint.get("metrics", "/metrics").addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })).addError(wire.ServiceUnavailable))
  .add(HttpApiEndpoint.get("openapi", "/v1/openapi.json").addSuccess(Schema.Unknown.annotations({ description: "this document" })))
  .middleware(Authorization) {}

/**
 * The dashboard's login: a one-time login URL for a holder of the token (never for a cookie), and the
 * session's CSRF token for the page (with the cookie).
 */
export class DashboardGroup extends HttpApiGroup.make("dashboard")
  .add(
    withBody(HttpApiEndpoint.post("login", "/v1/dashboard/login"), EmptyBody).addSuccess(
      Schema.Struct({
        url: Schema.String.annotations({ description: "http://<host>:<port>/login?code=<code>: works once, within the login code's lifetime (60 s by default)" }),
        expires_at: Schema.String
      })
    )
  )
  .add(HttpApiEndpoint.get("session", "/v1/dashboard/session").addSuccess(Schema.Struct({ csrf: Schema.String, expires_at: Schema.String })))
  .middleware(Authorization) {}

export class WardenApi extends HttpApi.make("warden")
  .add(HealthGroup)
  .add(DispatchGroup)
  .add(SessionsGroup)
  .add(StreamsGroup)
  .add(ServicesGroup)
  .add(ArgusGroup)
  .add(ViewsGroup)
  .add(OperationsGroup)
  .add(DashboardGroup)
  .addError(onTheWire(Unauthorized))
  .addError(onTheWire(OriginRefused))
  .addError(onTheWire(CrossSiteRefused))
  .addError(onTheWire(MalformedRequest))
  .addError(onTheWire(NoSuchEndpoint))
  .addError(onTheWire(MethodNotAllowed))
  .annotate(OpenApi.Title, "Warden daemon API")
  .annotate(OpenApi.Description, "The supervisor daemon's HTTP API on 127.0.0.1. Errors are JSON with `error`, the reason in words.") {}
