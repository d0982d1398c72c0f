import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Layer, Schema } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { runSignal } from "../src/cli/signalCore.js"
import { ConfigError, loadConfigSync } from "../src/config/loadConfig.js"
import { readDrainState } from "../src/daemon/drainState.js"
import { resolveProfile } from "../src/config/profiles.js"
import { TokenFileRefused, checkTokenFile, ensureToken } from "../src/daemon/apiToken.js"
import { DaemonLocked, acquireDaemonLock } from "../src/daemon/daemonLock.js"
import { SnapshotError, SNAPSHOT_VERSION, SnapshotStore, memorySnapshotStoreLayer } from "../src/daemon/SnapshotStore.js"
import { QueueError, WorkQueue, fileWorkQueueLayer } from "../src/daemon/WorkQueue.js"
import { makeGitTest } from "../src/git/Git.js"
import { ProcessError, Processes, ProcessesLive, makeProcessesTest } from "../src/processes/Processes.js"
import { RecordError, RecordStore, makeFileRecordStore, makeMemoryRecordStore } from "../src/records/RecordStore.js"
import { DispatchRefused, buildSpec, type DispatchRequest } from "../src/sessions/buildSpec.js"
import type { DispatchSpec } from "../src/sessions/dispatchSpec.js"
import { runPreflight } from "../src/sessions/preflight.js"
import { TemplateError, renderTemplate, type TemplateVars } from "../src/templates/render.js"
import { makeMemoryTerminals } from "../src/terminals/memoryTerminals.js"
import { TerminalError, Terminals } from "../src/terminals/Terminals.js"
import { workspacePaths } from "../src/workspace/paths.js"
import { OperatorsGroupError, stateAccess } from "../src/workspace/stateAccess.js"

/**
 * Every service error is a Schema.TaggedError whose `reason` is a closed union
 * of kinds and whose message is the text the operator saw before (`detail`):
 * what each service fails with can be decoded, and an unknown kind is refused.
 */

let dirs: string[] = []
const tempDir = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "warden-errors-")))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  dirs = []
})

const failureOf = <E>(effect: Effect.Effect<unknown, E>): E => {
  const result = Effect.runSync(Effect.either(effect))
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left
}

const thrownBy = (f: () => unknown): unknown => {
  try {
    f()
  } catch (error) {
    return error
  }
  throw new Error("expected a throw")
}

/** One encoded example per error: a known reason decodes; the same with an unknown reason is refused. */
const examples: ReadonlyArray<readonly [string, Schema.Schema<any, any, never>, Record<string, unknown>, string]> = [
  ["TerminalError", TerminalError, { operation: "create", session: "s", reason: "exists", detail: "create: session s already exists" }, "create: session s already exists"],
  ["ProcessError", ProcessError, { command: "nope", reason: "spawn-failed", detail: "spawn nope ENOENT" }, "spawn nope ENOENT"],
  ["RecordError", RecordError, { file: "/r.json", reason: "invalid", detail: "Unexpected token" }, "Unexpected token"],
  ["QueueError", QueueError, { reason: "invalid", detail: "queue file q is not JSON" }, "queue file q is not JSON"],
  ["SnapshotError", SnapshotError, { bead: "bd-1", reason: "version", detail: "snapshot version 0" }, "snapshot version 0"],
  ["ConfigError", ConfigError, { file: "/c.json", reason: "unreadable", issues: [{ path: "", message: "no such file" }] }, "cannot read the config /c.json: no such file"],
  ["TemplateError", TemplateError, { template: "t", reason: "not-found", detail: 'template "t.md" not found' }, 'template "t.md" not found'],
  ["DispatchRefused", DispatchRefused, { reason: "nothing-to-do", detail: "nothing to do", exitCode: 2 }, "nothing to do"],
  ["TokenFileRefused", TokenFileRefused, { file: "/t", reason: "empty", detail: "is empty", fix: "remove it" }, "the API token /t is empty; remove it"],
  ["OperatorsGroupError", OperatorsGroupError, { group: "ops", reason: "unknown-group", detail: "no group ops" }, "no group ops"],
  ["DaemonLocked", DaemonLocked, { file: "/l", reason: "held", detail: "another warden daemon runs" }, "another warden daemon runs"]
]

describe("service errors: a reason from a closed union, the old text as message", () => {
  for (const [tag, schema, fields, message] of examples) {
    it(`${tag} decodes with a known reason, shows its text as message, and refuses an unknown reason`, () => {
      const decoded = Schema.decodeUnknownSync(schema)({ _tag: tag, ...fields }) as Error & { _tag: string; reason: string }
      expect(decoded).toBeInstanceOf(Error)
      expect(decoded._tag).toBe(tag)
      expect(decoded.reason).toBe(fields.reason)
      expect(decoded.message).toBe(message)
      expect(Schema.encodeSync(schema)(decoded)).toEqual({ _tag: tag, ...fields })
      const refused = Schema.decodeUnknownEither(schema)({ _tag: tag, ...fields, reason: "something went wrong" })
      expect(Either.isLeft(refused)).toBe(true)
      // The constructor checks its fields too: free text is not a reason.
      expect(() => new (schema as unknown as new (f: unknown) => unknown)({ ...fields, reason: "something went wrong" })).toThrow(/reason/)
    })
  }
})

describe("each service fails with the reason that names what happened", () => {
  it("Terminals: a duplicate, a missing session and a refused key each have their kind", () => {
    const terminals = makeMemoryTerminals()
    const t = Effect.runSync(Effect.provide(Terminals, terminals.layer))
    const dir = tempDir()
    const spec = { name: "s1", cwd: dir, command: ["sh"], env: {}, transcriptPath: path.join(dir, "t.log") }
    Effect.runSync(t.create(spec))
    const duplicate = failureOf(t.create(spec))
    expect([duplicate.reason, duplicate.message]).toEqual(["exists", "create: session s1 already exists (memory terminals)"])
    expect(failureOf(t.capture("s2")).reason).toBe("not-found")
    expect(failureOf(t.sendKeys("s1", ["-t"])).reason).toBe("invalid-input")
  })

  it("Processes: a program that is not there cannot be spawned; the test layer names what it has no script for", async () => {
    const live = await Effect.runPromise(
      Effect.flip(Effect.flatMap(Processes, (p) => p.run("/nonexistent/warden-no-such-program", [], { cwd: os.tmpdir() }))).pipe(
        Effect.provide(ProcessesLive)
      )
    )
    expect(live.reason).toBe("spawn-failed")
    expect(live.message).toMatch(/ENOENT/)
    const scripted = makeProcessesTest([])
    expect(failureOf(scripted.service.run("git", ["status"], { cwd: "/" })).reason).toBe("not-scripted")
  })

  it("RecordStore: a record that is not JSON is invalid, one that cannot be read is unreadable, a missing one is null", () => {
    const paths = workspacePaths(tempDir())
    const store = makeFileRecordStore(paths)
    expect(Effect.runSync(store.readRun("bd-none"))).toBeNull()
    fs.mkdirSync(path.dirname(paths.runFile("bd-torn")), { recursive: true })
    fs.writeFileSync(paths.runFile("bd-torn"), '{"bead": ')
    expect(failureOf(store.readRun("bd-torn")).reason).toBe("invalid")
    fs.mkdirSync(paths.runFile("bd-dir"))
    const unreadable = failureOf(store.readRun("bd-dir"))
    expect([unreadable.reason, unreadable.file]).toEqual(["unreadable", paths.runFile("bd-dir")])
    expect(unreadable.message).toMatch(/EISDIR/)
  })

  it("WorkQueue: a corrupt file is invalid, an item it cannot hold is invalid-item", async () => {
    const file = path.join(tempDir(), "queue.json")
    const queue = await Effect.runPromise(Effect.provide(WorkQueue, fileWorkQueueLayer(file)))
    const item = { bead: "bd-q", profile: "demo", priority: 9, enqueuedAt: 1, retry: false }
    const refused = await Effect.runPromise(Effect.flip(queue.enqueue(item)))
    expect(refused.reason).toBe("invalid-item")
    expect(refused.message).toMatch(/^not a queue item: .*priority/)
    fs.writeFileSync(file, "{")
    const corrupt = await Effect.runPromise(Effect.flip(queue.list))
    expect([corrupt.reason, corrupt.message.startsWith(`queue file ${file} is not JSON`)]).toEqual(["invalid", true])
  })

  it("SnapshotStore: a bad bead id, a foreign version and a torn text each have their kind", () => {
    const store = Effect.runSync(Effect.provide(SnapshotStore, memorySnapshotStoreLayer()))
    const snapshot = { version: SNAPSHOT_VERSION, bead: "bd-s", request: {}, actor: {}, history: [], savedAt: 1 }
    expect(failureOf(store.save({ ...snapshot, bead: "../x" })).reason).toBe("invalid-bead")
    Effect.runSync(store.save({ ...snapshot, bead: "bd-v", version: SNAPSHOT_VERSION + 1 }))
    const { refused } = Effect.runSync(store.loadAll)
    expect(refused.map((e) => [e.bead, e.reason])).toEqual([["bd-v", "version"]])
  })

  it("Config: a missing file is unreadable, a torn one not-json, a wrong field invalid; the messages are as before", () => {
    const dir = tempDir()
    const reasonOf = (text: string | null) => {
      const file = path.join(dir, `c${Math.random()}.json`)
      if (text !== null) fs.writeFileSync(file, text)
      const loaded = loadConfigSync({ workspace: dir, config: file, env: {} })
      if (Either.isRight(loaded)) throw new Error("expected a refused config")
      return [loaded.left.reason, loaded.left.message.replace(file, "FILE")]
    }
    expect(reasonOf(null)).toEqual(["unreadable", "cannot read the config FILE: no such file"])
    expect(reasonOf("{")[0]).toBe("not-json")
    expect(reasonOf('{"concurrency": "many"}')).toEqual(["invalid", expect.stringMatching(/^invalid config FILE:\n {2}at concurrency: /)])
  })

  it("templates: a missing template is not-found, an unknown variable unknown-variable, an unterminated one syntax", () => {
    const dir = tempDir()
    const vars: TemplateVars = { bead: "b", title: "t", description: "d", repo: "/r", acceptance: "a", attempt_id: "x", status_file: "/s" }
    const dirs = { workspace: dir, builtin: path.join(dir, "none") }
    const reasonOf = (name: string) => {
      const rendered = renderTemplate(name, vars, dirs)
      if (Either.isRight(rendered)) throw new Error("expected a refused template")
      return rendered.left.reason
    }
    fs.writeFileSync(path.join(dir, "unknown.md"), "{{ nosuchvar }}")
    fs.writeFileSync(path.join(dir, "open.md"), "{{ bead")
    expect([reasonOf("absent"), reasonOf("unknown"), reasonOf("open"), reasonOf("Bad Name")]).toEqual([
      "not-found",
      "unknown-variable",
      "syntax",
      "invalid-name"
    ])
  })

  it("dispatch: an unknown profile and an empty request are refused with their kind and the CLI's exit code", () => {
    const dir = tempDir()
    const config = Either.getOrThrow(loadConfigSync({ workspace: path.join(dir, "ws"), env: {} }))
    const env = { config, paths: workspacePaths(config.workspaceDir) }
    const request: DispatchRequest = {
      bead: "bd-d",
      repo: dir,
      agent: "demo",
      template: undefined,
      prompt: undefined,
      promptFile: undefined,
      title: undefined,
      acceptance: undefined,
      command: undefined,
      overrides: {}
    }
    const unknown = failureOf(buildSpec(env, { ...request, agent: "nobody" }))
    expect([unknown.reason, unknown.exitCode, unknown.message]).toEqual(["unknown-profile", 2, expect.stringMatching(/^unknown agent profile "nobody"/)])
    expect(failureOf(buildSpec(env, request)).reason).toBe("nothing-to-do")
  })

  it("the token file: one open to every local user is too-open, with the old words", () => {
    const file = path.join(tempDir(), "token")
    fs.writeFileSync(file, `${"a".repeat(64)}\n`, { mode: 0o644 })
    fs.chmodSync(file, 0o644)
    const refused = thrownBy(() => checkTokenFile(file, {})) as TokenFileRefused
    expect(refused).toBeInstanceOf(TokenFileRefused)
    expect(refused.reason).toBe("too-open")
    expect(refused.message).toBe(`the API token ${file} has mode 0644: it is readable by every local user; chmod 600 ${file}`)
  })

  it("the operators' group: a group this machine does not know is unknown-group", () => {
    const refused = thrownBy(() => stateAccess("warden-no-such-group-zz")) as OperatorsGroupError
    expect(refused).toBeInstanceOf(OperatorsGroupError)
    expect([refused.reason, refused.group]).toEqual(["unknown-group", "warden-no-such-group-zz"])
    expect(refused.message).toMatch(/^config operatorsGroup "warden-no-such-group-zz" is not a group on this machine/)
  })

  it("the daemon lock: a second taker is refused as held, naming the holder", () => {
    const file = path.join(tempDir(), "daemon.lock")
    const lock = acquireDaemonLock(file)
    try {
      const refused = thrownBy(() => acquireDaemonLock(file)) as DaemonLocked
      expect(refused).toBeInstanceOf(DaemonLocked)
      expect(refused.reason).toBe("held")
      expect(refused.message).toBe(`another warden daemon (pid ${process.pid}) runs for this workspace (it holds ${file})`)
    } finally {
      lock.release()
    }
  })
})

describe("preflight", () => {
  it("cannot fail: a check that cannot run (a service dies) is the failed check preflight-ran, named", async () => {
    const dir = tempDir()
    const repo = path.join(dir, "repo")
    fs.mkdirSync(repo)
    const config = { ...Either.getOrThrow(loadConfigSync({ workspace: path.join(dir, "ws"), env: { WARDEN_ALLOW_ROOT: "1" } })), allowedRoots: [dir] }
    const profile = resolveProfile(config, "demo")
    if ("error" in profile) throw new Error(profile.error)
    const records = makeMemoryRecordStore()
    const dying = Layer.succeed(RecordStore, { ...records.service, listRuns: Effect.die(new Error("runs folder is a file")) })
    const spec: DispatchSpec = {
      bead: "bd-pf",
      repo,
      profile,
      prompt: { ok: true, text: "do it" },
      templateName: null,
      command: null,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      config,
      paths: workspacePaths(config.workspaceDir),
      supervisor: { pid: process.pid, procStart: null, host: "test", kind: "foreground", startedAt: Date.now() }
    }
    const layers = Layer.mergeAll(makeMemoryTerminals().layer, makeProcessesTest([], ["node"]).layer, makeGitTest({ [repo]: { head: null, changes: { newCommits: [], status: [], diffStat: "" } } }), dying)
    const checks = await Effect.runPromise(Effect.provide(runPreflight(spec), layers))
    expect(checks).toEqual([{ name: "preflight-ran", ok: false, detail: "a check could not run: runs folder is a file" }])
  })
})

describe("only a missing file is taken for no file", () => {
  // Tests run as root here, which mode bits do not stop: a symlink loop is a path lstat refuses (ELOOP) that is not missing.
  it("drain state: a file that cannot be looked at counts as draining, a missing one as not", () => {
    const dir = tempDir()
    expect(readDrainState(path.join(dir, "absent"))).toBe(false)
    const loop = path.join(dir, "loop")
    fs.symlinkSync(loop, loop)
    expect(readDrainState(path.join(loop, "drain.json"))).toBe(true)
  })

  it("the token: one that cannot be looked at is named, not written over", () => {
    const dir = tempDir()
    const loop = path.join(dir, "loop")
    fs.symlinkSync(loop, loop)
    const thrown = thrownBy(() => ensureToken(path.join(loop, "token"))) as NodeJS.ErrnoException
    // Refused by the look (lstat), before anything tries to create a token there.
    expect([thrown.code, thrown.syscall]).toEqual(["ELOOP", "lstat"])
  })

  it("a signal for a bead whose record cannot be read is kept, with a warning, not refused as an unknown bead", () => {
    const paths = workspacePaths(tempDir())
    fs.mkdirSync(paths.runFile("bd-sig"), { recursive: true })
    const outcome = runSignal(
      paths,
      { bead: "bd-sig", status: "done", summary: "ok", attempt: "a1", from: undefined, stdin: () => "" },
      {}
    )
    expect(outcome.error).toBeNull()
    expect(outcome.warnings).toEqual(["warden signal: the record of bd-sig cannot be read; the signal is kept"])
    expect(fs.readFileSync(paths.signalsFile("bd-sig"), "utf8")).toContain('"status":"done"')
  })
})
