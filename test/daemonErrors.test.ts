import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import {
  AlreadyCancelling,
  BeadBusy,
  DaemonError,
  DaemonStopping,
  InvalidRequest,
  NoRetryRequest,
  NoSession,
  NotRunning,
  RecordUnreadable,
  RepoMissing,
  RepoNotAllowed,
  SendFailed,
  ServiceUnavailable,
  UnknownBead,
  UnknownProfile,
  UnknownService,
  ArgusDisabled,
  NoHistory,
  NoTranscript,
  isDaemonError
} from "../src/daemon/errors.js"
import { ApiRefusal, ERROR_STATUS, statusOf } from "../src/server/errorStatus.js"

/** Each refusal, its status and its words: the words are the ones the README and the e2e tests quote. */
const CASES: ReadonlyArray<readonly [DaemonError, number, string]> = [
  [new UnknownBead({ bead: "bd-1" }), 404, "no bead bd-1 in this workspace"],
  [new BeadBusy({ bead: "bd-1", reason: { _tag: "Dispatched", state: "running" } }), 409, "bead bd-1 is already dispatched (state running)"],
  [new BeadBusy({ bead: "bd-1", reason: { _tag: "SupervisedElsewhere", pid: 42 } }), 409, "bead bd-1 is being supervised by pid 42"],
  [new BeadBusy({ bead: "bd-1", reason: { _tag: "StillRunning" } }), 409, "bd-1 is still running"],
  [new NotRunning({ bead: "bd-1", ended: "done" }), 409, "bd-1 is not running (it ended done)"],
  [new NoSession({ bead: "bd-1" }), 404, "bd-1 has no running session"],
  [new AlreadyCancelling({ bead: "bd-1" }), 409, "bd-1 is already being cancelled"],
  [new UnknownProfile({ profile: "x", configured: ["codex", "claude"] }), 422, 'unknown agent profile "x"; configured: claude, codex'],
  [new RepoMissing({ repo: "/nope" }), 422, "repo /nope does not exist"],
  [new RepoNotAllowed({ repo: "/etc", allowedRoots: ["~/src", "/srv"] }), 422, "repo /etc is not under an allowed root (~/src, /srv)"],
  [new DaemonStopping(), 409, "the daemon is stopping; dispatch again once it is back"],
  [new InvalidRequest({ problem: "give --command" }), 422, "give --command"],
  [
    new NoRetryRequest({ bead: "bd-1" }),
    404,
    "no dispatch request of bd-1 is kept in this workspace (retry knows beads dispatched through a daemon here, for retention.stateDays): dispatch it again"
  ],
  [new RecordUnreadable({ bead: "bd-1", file: "/w/runs/bd-1.json", reason: "bad JSON" }), 409, "the record /w/runs/bd-1.json of bd-1 is unreadable: bad JSON"],
  [new SendFailed({ session: "agent-bd-1", reason: "no session" }), 409, "could not send to agent-bd-1: no session"],
  [new ServiceUnavailable({ reason: "disk full" }), 503, "the daemon cannot do this now: disk full"],
  [new UnknownService({ name: "nope", configured: ["web", "gw"] }), 404, "no service nope; configured: gw, web"],
  [new ArgusDisabled(), 409, "Argus is not enabled: set argus.enabled in the config and restart the daemon"],
  [new NoHistory({ bead: "bd-1" }), 404, "no machine history for bead bd-1: each session of it, run by the daemon or by dispatch --wait, writes one"],
  [new NoTranscript({ bead: "bd-1" }), 404, "no transcript of bead bd-1 is kept in the workspace"]
]

describe("the daemon's domain errors", () => {
  it("read as the daemon's refusals always did, and the API's one table gives each its status", () => {
    for (const [error, status, message] of CASES) {
      expect(error.message, error._tag).toBe(message)
      expect(statusOf(error), error._tag).toBe(status)
      expect(isDaemonError(error)).toBe(true)
    }
    // Every error of the union has a case above, and a status in the table.
    expect(new Set(CASES.map(([error]) => error._tag))).toEqual(new Set(DaemonError.members.map((member) => member.identifier)))
    // The table covers the daemon's refusals and the HTTP layer's, and nothing else.
    expect(Object.keys(ERROR_STATUS).sort()).toEqual(ApiRefusal.members.map((member) => member.identifier).sort())
  })

  it("are values: they round-trip through their schema with their fields, and a plain Error is not one", () => {
    for (const [error] of CASES) {
      const encoded = Schema.encodeSync(DaemonError)(error)
      const decoded = Schema.decodeUnknownSync(DaemonError)(JSON.parse(JSON.stringify(encoded)))
      expect(decoded).toEqual(error)
      expect(decoded.message).toBe(error.message)
    }
    expect(isDaemonError(new Error("no bead bd-1 in this workspace"))).toBe(false)
    expect(Effect.runSync(Effect.flip(new UnknownBead({ bead: "bd-2" })))._tag).toBe("UnknownBead")
  })
})
