import { spawn } from "node:child_process"
import * as fs from "node:fs"
import type { IncomingMessage } from "node:http"
import { Effect } from "effect"
import WebSocket from "ws"
import { RecordStore } from "../records/RecordStore.js"
import { readFrom } from "../workspace/readRange.js"
import { runIsLive } from "../sessions/reconcile.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { runningDaemon } from "../daemon/runningDaemon.js"
import { callDaemon } from "./daemonClient.js"
import { refuseUnsafeSocket } from "./controlCommands.js"
import { CliError, checkBead, onRuntime, type CliEnvironment } from "./environment.js"


/**
 * `warden logs <bead> [-f]`: the transcript of the bead's latest attempt, as
 * the agent's terminal printed it; `-f` follows it until the session ends.
 */
export const logsCommand = (env: CliEnvironment, bead: string, follow: boolean, json: boolean) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    const store = yield* onRuntime(env, RecordStore)
    const run = yield* onRuntime(env, store.readRun(bead)).pipe(Effect.orElseSucceed(() => null))
    if (run === null) return yield* new CliError({ message: `no record of bead "${bead}" in ${env.paths.runs}` })
    const file = run.transcript_path
    if (file === null || !fs.existsSync(file)) return yield* new CliError({ message: `${bead} has no transcript yet (state ${run.lifecycle_state})` })
    if (json) {
      process.stdout.write(`${JSON.stringify({ bead, attempt: run.attempt, attempt_id: run.attempt_id, transcript_path: file, text: fs.readFileSync(file, "utf8") })}\n`)
      return
    }
    let offset = 0
    const pump = () => {
      const read = readFrom(file, offset)
      if (read === null || read.data.length === 0) return
      offset += read.data.length
      process.stdout.write(read.data)
    }
    pump()
    if (!follow || !runIsLive(run)) return
    yield* Effect.async<void>((resume) => {
      const watcher = fs.watch(file, () => pump())
      // The end of the session is in its records; checked on each record change.
      const recordWatcher = fs.watch(env.paths.runs, (_event, name) => {
        if (name?.toString() !== `${bead}.json`) return
        try {
          const latest = JSON.parse(fs.readFileSync(env.paths.runFile(bead), "utf8"))
          if (!runIsLive(latest) || latest.attempt_id !== run.attempt_id) {
            pump()
            watcher.close()
            recordWatcher.close()
            resume(Effect.void)
          }
        } catch {
          // mid-rename: the next event brings the new file
        }
      })
      return Effect.sync(() => {
        watcher.close()
        recordWatcher.close()
      })
    })
  })

/**
 * `warden attach <bead>`: on this machine, tmux attach to the agent's session
 * on the agents' socket (take over with the keyboard, detach with C-b d);
 * otherwise the daemon's read-only terminal stream.
 */
export const attachCommand = (env: CliEnvironment, bead: string) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    yield* refuseUnsafeSocket(env)
    const name = sessionNameFor(bead)
    const terminals = yield* onRuntime(env, Terminals)
    const local = yield* onRuntime(env, terminals.exists(name)).pipe(Effect.orElseSucceed(() => false))
    if (local) {
      const code = yield* Effect.async<number>((resume) => {
        const child = spawn("tmux", ["-S", terminals.socket, "attach-session", "-t", `=${name}`], { stdio: "inherit" })
        child.on("exit", (status) => resume(Effect.succeed(status ?? 1)))
      })
      if (code !== 0) return yield* new CliError({ message: `tmux attach exited ${code}`, exitCode: code })
      return
    }
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* new CliError({ message: `no tmux session ${name} on ${terminals.socket}, and no daemon to stream it from` })
    const token = fs.readFileSync(env.paths.daemon.token, "utf8").trim()
    yield* Effect.async<void, CliError>((resume) => {
      const socket = new WebSocket(`ws://${daemon.host}:${daemon.port}/v1/sessions/${encodeURIComponent(bead)}/terminal`, {
        headers: { authorization: `Bearer ${token}` }
      })
      // Said once the daemon took the stream, not before it could refuse it.
      socket.on("open", () => process.stderr.write(`read-only stream of ${bead} from the daemon (Ctrl-C to leave)\n`))
      socket.on("message", (data) => process.stdout.write(data as Buffer))
      socket.on("close", () => resume(Effect.void))
      socket.on("unexpected-response", (_req, res) =>
        void refusal(res, "stream").then(({ status, reason }) =>
          resume(Effect.fail(new CliError({ message: status === 404 ? `${reason}: nothing to attach to (\`warden show ${bead}\` tells how it ended)` : reason })))
        )
      )
      socket.on("error", (error) => resume(Effect.fail(new CliError({ message: `stream failed: ${error.message}` }))))
      return Effect.sync(() => socket.close())
    })
  })

/** `warden retry <bead>`: the daemon dispatches a finished bead again with its last request. */
export const retryCommand = (env: CliEnvironment, bead: string, json: boolean) =>
  Effect.gen(function* () {
    yield* checkBead(bead)
    const daemon = runningDaemon(env.paths)
    if (daemon === null) {
      return yield* new CliError({ message: "retry needs the daemon (`warden daemon`); without it, dispatch the bead again with --wait" })
    }
    const answer = yield* callDaemon(env.paths, daemon, "POST", `/v1/sessions/${encodeURIComponent(bead)}/retry`, {})
    process.stdout.write(json ? `${JSON.stringify(answer, null, 2)}\n` : `${bead}: queued again with the daemon (pid ${daemon.pid})\n`)
  })

/** The reason a daemon gave for refusing a websocket (its JSON `error`), or its status. */
const refusal = (res: IncomingMessage, what: string): Promise<{ status: number; reason: string }> =>
  new Promise((resolve) => {
    let body = ""
    res.on("data", (chunk: Buffer) => (body += chunk.toString()))
    res.on("end", () => {
      let reason = `the daemon refused the ${what} (${res.statusCode})`
      try {
        const error = (JSON.parse(body) as { error?: unknown }).error
        if (typeof error === "string") reason = `the daemon refused the ${what}: ${error}`
      } catch {
        // no JSON reason: the status says it
      }
      resolve({ status: res.statusCode ?? 0, reason })
    })
  })

/** `warden tail`: the daemon's live event feed, a line per event (`--json`: the events as sent). */
export const tailCommand = (env: CliEnvironment, topics: string | undefined, since: number | undefined, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* new CliError({ message: "no warden daemon runs for this workspace: start one with `warden daemon`" })
    const token = fs.readFileSync(env.paths.daemon.token, "utf8").trim()
    const query = new URLSearchParams()
    if (topics !== undefined) query.set("topics", topics)
    if (since !== undefined) query.set("since", String(since))
    let lastSeq = since ?? 0
    yield* Effect.async<void, CliError>((resume) => {
      const socket = new WebSocket(`ws://${daemon.host}:${daemon.port}/v1/feed?${query}`, { headers: { authorization: `Bearer ${token}` } })
      socket.on("message", (data) => {
        const event = JSON.parse(data.toString()) as { seq?: number; at?: string; topic?: string; type: string; data?: Record<string, unknown> }
        if (event.seq !== undefined && event.type !== "heartbeat" && event.type !== "hello") lastSeq = event.seq
        if (json) process.stdout.write(`${data.toString()}\n`)
        else if (event.type !== "heartbeat") {
          const d = event.data ?? {}
          // A machine event names its actor, the state it entered (XState's value) or the event it received.
          const machine =
            event.topic === "machines"
              ? [d.actor, d.value === undefined ? undefined : typeof d.value === "string" ? d.value : JSON.stringify(d.value), typeof d.event === "string" ? d.event : (d.event as { type?: string } | undefined)?.type]
              : []
          const what = [...machine, d.bead, d.state, d.status, d.reason].filter((x) => x !== undefined && x !== null).join("  ")
          process.stdout.write(`${event.seq ?? "-"}  ${event.at?.slice(11, 23) ?? ""}  ${event.type}  ${what}\n`)
        }
      })
      socket.on("close", (code) =>
        // The daemon going away is said, not taken for the end of the feed.
        resume(
          code === 1001
            ? Effect.fail(new CliError({ message: `the daemon stopped (the feed closed with 1001); follow it again with \`warden tail --since ${lastSeq}\` once it is back` }))
            : Effect.void
        )
      )
      socket.on("unexpected-response", (_req, res) => void refusal(res, "feed").then(({ reason }) => resume(Effect.fail(new CliError({ message: reason })))))
      socket.on("error", (error) => resume(Effect.fail(new CliError({ message: `feed failed: ${error.message}` }))))
      return Effect.sync(() => socket.close())
    })
  })

/** `warden drain [--off]`: the daemon admits nothing new (or again), running sessions go on. */
export const drainCommand = (env: CliEnvironment, on: boolean, json: boolean) =>
  Effect.gen(function* () {
    const daemon = runningDaemon(env.paths)
    if (daemon === null) return yield* new CliError({ message: "no warden daemon runs for this workspace: start one with `warden daemon`" })
    const answer = yield* callDaemon(env.paths, daemon, "POST", "/v1/drain", { on })
    process.stdout.write(
      json ? `${JSON.stringify(answer)}\n` : on ? "draining: queued beads wait, running sessions go on\n" : "admitting queued beads again\n"
    )
  })
