import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, Schema } from "effect"

/**
 * Why a process could not be run: `spawn-failed` (not found, not executable, no such working
 * directory: Node's words are in `detail`), `not-scripted` (the test layer has no answer for it).
 */
export const ProcessErrorReason = Schema.Literal("spawn-failed", "not-scripted")
export type ProcessErrorReason = typeof ProcessErrorReason.Type

/** A process could not be started at all (not found, not executable). */
export class ProcessError extends Schema.TaggedError<ProcessError>()("ProcessError", {
  command: Schema.String,
  reason: ProcessErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

export interface RunOptions {
  readonly cwd: string
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly timeoutMs?: number
  /** Characters of stdout and stderr (combined, in order) kept from the end. */
  readonly tailChars?: number
  readonly stdin?: string
}

export interface RunResult {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly timedOut: boolean
  readonly durationMs: number
  readonly stdout: string
  /** The last `tailChars` of stdout and stderr interleaved as they came. */
  readonly outputTail: string
}

/** Short-lived processes Warden runs itself: git, verification checks, version probes. */
export class Processes extends Context.Tag("warden/Processes")<
  Processes,
  {
    /** Runs `command args` to its end (or its timeout, which kills its whole process group). */
    readonly run: (command: string, args: ReadonlyArray<string>, options: RunOptions) => Effect.Effect<RunResult, ProcessError>
    /** The absolute path of `command` on `PATH`, or null. */
    readonly which: (command: string, pathEnv?: string) => Effect.Effect<string | null>
  }
>() {}

const runLive = (command: string, args: ReadonlyArray<string>, options: RunOptions) =>
  Effect.async<RunResult, ProcessError>((resume, signal) => {
    const started = Date.now()
    const tailChars = options.tailChars ?? 4_000
    let stdout = ""
    let tail = ""
    let timedOut = false
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: (options.env ?? process.env) as NodeJS.ProcessEnv,
      detached: true,
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"]
    })
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, sig)
      } catch {
        // already gone
      }
    }
    const keep = (chunk: Buffer, isStdout: boolean) => {
      const text = chunk.toString("utf8")
      if (isStdout && stdout.length < 1_000_000) stdout += text
      tail = (tail + text).slice(-tailChars)
    }
    child.stdout?.on("data", (chunk: Buffer) => keep(chunk, true))
    child.stderr?.on("data", (chunk: Buffer) => keep(chunk, false))
    if (options.stdin !== undefined) child.stdin?.end(options.stdin)
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            killGroup("SIGTERM")
            setTimeout(() => killGroup("SIGKILL"), 2_000).unref()
          }, options.timeoutMs)
    let settled = false
    const finish = (code: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return
      settled = true
      if (timer) clearTimeout(timer)
      resume(Effect.succeed({ exitCode: code, signal: sig, timedOut, durationMs: Date.now() - started, stdout, outputTail: tail }))
    }
    child.on("error", (error) => {
      if (settled) return
      settled = true
      if (timer) clearTimeout(timer)
      resume(Effect.fail(new ProcessError({ command, reason: "spawn-failed", detail: error.message })))
    })
    child.on("close", (code, sig) => finish(code, sig))
    // A process that left something behind holding its stdout (a server it started in another
    // process group) would keep "close" from ever firing: its exit is enough, after a moment for the last output.
    child.on("exit", (code, sig) => {
      setTimeout(() => {
        // After one more turn of the event loop's I/O phase: a loop that was busy when the time ran out
        // has output waiting in the pipe, and it must be read before the streams are let go.
        setImmediate(() => {
          if (settled) return
          child.stdout?.destroy()
          child.stderr?.destroy()
          finish(code, sig)
        })
      }, 500).unref()
    })
    signal.addEventListener("abort", () => killGroup("SIGKILL"))
  })

const whichLive = (command: string, pathEnv?: string) =>
  Effect.sync(() => {
    if (command.includes("/")) {
      try {
        fs.accessSync(command, fs.constants.X_OK)
        return path.resolve(command)
      } catch {
        // not there or not executable: not on this path
        return null
      }
    }
    for (const dir of (pathEnv ?? process.env.PATH ?? "").split(":")) {
      if (dir === "") continue
      const candidate = path.join(dir, command)
      try {
        fs.accessSync(candidate, fs.constants.X_OK)
        if (fs.statSync(candidate).isFile()) return candidate
      } catch {
        // not here
      }
    }
    return null
  })

export const ProcessesLive = Layer.succeed(Processes, { run: runLive, which: whichLive })

/** A scripted result for the test layer, chosen by the first matching rule. */
export interface ScriptedProcess {
  readonly match: (command: string, args: ReadonlyArray<string>) => boolean
  readonly result: Partial<RunResult>
}

/** The test layer: answers from a script; a command no rule covers fails with the method's name. */
export const makeProcessesTest = (rules: ReadonlyArray<ScriptedProcess>, onPath: ReadonlyArray<string> = []) => {
  const calls: Array<{ command: string; args: ReadonlyArray<string>; cwd: string }> = []
  const service = Processes.of({
    run: (command, args, options) =>
      Effect.suspend(() => {
        calls.push({ command, args, cwd: options.cwd })
        const rule = rules.find((r) => r.match(command, args))
        if (rule === undefined) {
          return Effect.fail(new ProcessError({ command, reason: "not-scripted", detail: `Processes.run: no scripted result for ${command} ${args.join(" ")}` }))
        }
        return Effect.succeed({
          exitCode: 0,
          signal: null,
          timedOut: false,
          durationMs: 0,
          stdout: "",
          outputTail: "",
          ...rule.result
        })
      }),
    which: (command) => Effect.succeed(onPath.includes(command) ? `/usr/bin/${command}` : null)
  })
  return { service, calls, layer: Layer.succeed(Processes, service) }
}
