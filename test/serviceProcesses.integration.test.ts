import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either, Schema } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { ServiceError } from "../src/services/serviceErrors.js"
import { type ServiceSpec, ServiceProcesses, makeServiceProcessesLive, makeServiceProcessesTest } from "../src/services/ServiceProcesses.js"

/**
 * Services in process mode, with real processes: their output in a bounded log, their exit seen, their whole
 * process group stopped (SIGTERM, then SIGKILL after the grace), a recycled pid told apart by its start time.
 */

let dirs: Array<string> = []
let groups: Array<number> = []
const tempDir = () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "warden-svc-")))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL")
    } catch {
      // gone, as it should be
    }
  }
  groups = []
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  dirs = []
})

/** The live processes of a process group, read from /proc here, independently of the product. */
const membersOf = (pgid: number): Array<number> =>
  fs.readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return []
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return Number(fields[2]) === pgid && fields[0] !== "Z" ? [Number(entry)] : []
    } catch {
      return []
    }
  })

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const specIn = (dir: string, command: string, args: ReadonlyArray<string>, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name: "svc",
  command,
  args,
  cwd: dir,
  env: {},
  logFile: path.join(dir, "state", "services", "svc.log"),
  logMaxBytes: 1_000_000,
  ...extra
})

const live = makeServiceProcessesLive()
const startLive = async (spec: ServiceSpec) => {
  const started = await Effect.runPromise(live.start(spec))
  groups.push(started.pid)
  return started
}

describe("ServiceProcesses (live)", () => {
  it("a started service's output (stdout and stderr) reaches its log, and the log stays under its limit while it runs, rotated to one .1", async () => {
    const dir = tempDir()
    const limit = 1_000
    const written = path.join(dir, "written")
    // 30 lines of 50 bytes to stdout, slowly, then one to stderr (1550 bytes in all, past the limit), then it runs on.
    const script = `let i = 0; const t = setInterval(() => { process.stdout.write("line-" + String(i).padStart(4, "0") + " " + "x".repeat(39) + "\\n"); if (++i === 30) { clearInterval(t); process.stderr.write("the-end-on-stderr\\n"); require("fs").writeFileSync(${JSON.stringify(written)}, ""); setInterval(() => {}, 1000) } }, 3)`
    const spec = specIn(dir, process.execPath, ["-e", script], { logMaxBytes: limit })
    const started = await startLive(spec)
    await until("the output to be written", () => fs.existsSync(written))
    // Bounded while the service runs, not only once it has ended.
    await until("the log to be under its limit", () => fs.statSync(spec.logFile).size <= limit && fs.existsSync(`${spec.logFile}.1`))
    expect(live.alive(started.pid, started.startTicks)).toBe(true)
    await Effect.runPromise(live.stop(started.pid, 2_000))
    const current = fs.readFileSync(spec.logFile, "utf8")
    const rotated = fs.readFileSync(`${spec.logFile}.1`, "utf8")
    expect(Buffer.byteLength(current)).toBeLessThanOrEqual(limit)
    expect(Buffer.byteLength(rotated)).toBeLessThanOrEqual(limit)
    expect(Buffer.byteLength(rotated)).toBeGreaterThan(0)
    expect(fs.existsSync(`${spec.logFile}.2`)).toBe(false)
    // What is kept is the output's tail, in order, across the two files.
    const kept = (rotated + current).split("\n").filter((line) => line !== "")
    expect(kept.at(-1)).toBe("the-end-on-stderr")
    const numbers = kept.filter((line) => line.startsWith("line-")).map((line) => Number(line.slice(5, 9)))
    expect(numbers.at(-1)).toBe(29)
    expect(numbers.length).toBeGreaterThan(1)
    numbers.forEach((n, i) => i > 0 && expect(n).toBe(numbers[i - 1]! + 1))
  })

  it("appends to an existing log, creates its folder, and passes the daemon's environment plus the service's env", async () => {
    const dir = tempDir()
    const spec = specIn(dir, "sh", ["-c", 'echo "mark=$SVC_MARK path=${PATH:+set}"'], { env: { SVC_MARK: "here" } })
    fs.mkdirSync(path.dirname(spec.logFile), { recursive: true })
    fs.writeFileSync(spec.logFile, "before\n")
    const started = await startLive(spec)
    await Effect.runPromise(live.wait(started.pid))
    expect(fs.readFileSync(spec.logFile, "utf8")).toBe("before\nmark=here path=set\n")
  })

  it("wait reports the exit code, and the signal that ended a process", async () => {
    const dir = tempDir()
    const coded = await startLive(specIn(dir, process.execPath, ["-e", "process.exit(3)"]))
    expect(await Effect.runPromise(live.wait(coded.pid))).toEqual({ code: 3, signal: null })
    // A second wait after the exit still knows it.
    expect(await Effect.runPromise(live.wait(coded.pid))).toEqual({ code: 3, signal: null })
    const killed = await startLive(specIn(dir, "sleep", ["100"]))
    const waiting = Effect.runPromise(live.wait(killed.pid))
    process.kill(killed.pid, "SIGKILL")
    expect(await waiting).toEqual({ code: null, signal: "SIGKILL" })
  })

  it("wait on an adopted pid (not started here) resolves once it is gone", async () => {
    const other = spawn("sleep", ["100"], { detached: true, stdio: "ignore" })
    const pid = other.pid as number
    groups.push(pid)
    let resolved = false
    const waiting = Effect.runPromise(live.wait(pid)).then((exit) => {
      resolved = true
      return exit
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(resolved).toBe(false)
    process.kill(pid, "SIGTERM")
    // Its parent here collects it; until then it is a zombie, which counts as gone.
    expect(await waiting).toEqual({ code: null, signal: null })
  })

  it("stop ends the whole group: a grandchild that ignores SIGTERM (SIGKILL after the grace) and a `sh -c 'sleep 100 &'` child", async () => {
    const dir = tempDir()
    const ready = path.join(dir, "ready")
    const stubborn = `process.on("SIGTERM", () => {}); require("fs").writeFileSync(${JSON.stringify(ready)}, ""); setInterval(() => {}, 1000)`
    const started = await startLive(
      specIn(dir, "sh", ["-c", `sh -c 'sleep 100 &'; ${JSON.stringify(process.execPath)} -e '${stubborn}' & exec sleep 100`])
    )
    await until("the stubborn grandchild to be ready", () => fs.existsSync(ready))
    const before = membersOf(started.pid)
    // The leader (sleep), the orphaned `sleep 100` of the inner shell, the node that ignores SIGTERM.
    expect(before.length).toBeGreaterThanOrEqual(3)
    expect(before).toContain(started.pid)
    const waiting = Effect.runPromise(live.wait(started.pid))
    const t0 = Date.now()
    await Effect.runPromise(live.stop(started.pid, 700))
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(650)
    expect(membersOf(started.pid)).toEqual([])
    for (const pid of before) expect(fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, "utf8") : "gone").toMatch(/gone|\) Z /)
    expect(await waiting).toEqual({ code: null, signal: "SIGTERM" })
  })

  it("stop returns as soon as the group has obeyed SIGTERM, well before the grace", async () => {
    const dir = tempDir()
    const started = await startLive(specIn(dir, "sh", ["-c", "sleep 100 & exec sleep 100"]))
    await until("both sleeps", () => membersOf(started.pid).length === 2)
    const t0 = Date.now()
    await Effect.runPromise(live.stop(started.pid, 30_000))
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(membersOf(started.pid)).toEqual([])
  })

  it("stop refuses pid 1 and the daemon's own group", async () => {
    await expect(Effect.runPromise(live.stop(1, 10))).rejects.toThrow(/refusing to signal the process group 1$/)
    const own = Number(fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[2])
    await expect(Effect.runPromise(live.stop(own, 10))).rejects.toThrow(`refusing to signal the process group ${own}`)
  })

  it("alive is true for the same process, false for a recycled pid (other start time) and after the end", async () => {
    const dir = tempDir()
    const started = await startLive(specIn(dir, "sleep", ["100"]))
    expect(started.startTicks).toEqual(expect.any(Number))
    const ticks = started.startTicks as number
    expect(live.alive(started.pid, ticks)).toBe(true)
    expect(live.alive(started.pid, ticks + 1)).toBe(false)
    expect(live.alive(started.pid, null)).toBe(true)
    await Effect.runPromise(live.stop(started.pid, 2_000))
    expect(live.alive(started.pid, ticks)).toBe(false)
  })

  it("a program that cannot start, a missing folder or a bad limit is a ServiceError naming the service and what is wrong", async () => {
    const dir = tempDir()
    const failure = async (spec: ServiceSpec) => {
      const result = await Effect.runPromise(Effect.either(live.start(spec)))
      if (Either.isRight(result)) {
        groups.push(result.right.pid)
        throw new Error("expected a failure")
      }
      return result.left
    }
    const missing = await failure(specIn(dir, "no-such-program-warden", []))
    expect(missing).toBeInstanceOf(ServiceError)
    expect(missing.reason).toBe("spawn-failed")
    expect(missing.message).toMatch(/service svc: cannot start no-such-program-warden: .*ENOENT/)
    const noDir = await failure(specIn(dir, "sleep", ["1"], { cwd: path.join(dir, "nope") }))
    expect(noDir.message).toMatch(/service svc: its working directory .*nope does not exist/)
    const badLimit = await failure(specIn(dir, "sleep", ["1"], { logMaxBytes: 0 }))
    expect(badLimit.message).toMatch(/logMaxBytes must be a positive integer, not 0/)
    fs.writeFileSync(path.join(dir, "file"), "")
    const badLog = await failure(specIn(dir, "sleep", ["1"], { logFile: path.join(dir, "file", "svc.log") }))
    expect(badLog.reason).toBe("io")
    expect(badLog.message).toMatch(/cannot open its log/)
  })

  it("ServiceError decodes with a known reason, shows its detail as message, and refuses an unknown reason", () => {
    const decoded = Schema.decodeUnknownSync(ServiceError)({ _tag: "ServiceError", reason: "invalid-unit", detail: "bad unit x" })
    expect(decoded.message).toBe("bad unit x")
    expect(() => Schema.decodeUnknownSync(ServiceError)({ _tag: "ServiceError", reason: "whatever", detail: "x" })).toThrow()
  })
})

/** One contract, both layers: what the lead's unit tests rely on from the fake holds for the real thing. */
describe.each([
  ["live", () => ({ service: live, end: (pid: number) => process.kill(pid, "SIGKILL") })],
  [
    "test",
    () => {
      const fake = makeServiceProcessesTest()
      return { service: fake.service, end: (pid: number) => fake.exit(pid, null, "SIGKILL") }
    }
  ]
] as const)("ServiceProcesses contract (%s layer)", (_name, make) => {
  it("start, alive, stop, wait: a stopped process is not alive and its wait says SIGTERM", async () => {
    const { service } = make()
    const dir = tempDir()
    const started = await Effect.runPromise(service.start(specIn(dir, "sleep", ["100"])))
    groups.push(started.pid)
    expect(service.alive(started.pid, started.startTicks)).toBe(true)
    const waiting = Effect.runPromise(service.wait(started.pid))
    await Effect.runPromise(service.stop(started.pid, 2_000))
    expect(await waiting).toEqual({ code: null, signal: "SIGTERM" })
    expect(service.alive(started.pid, started.startTicks)).toBe(false)
  })

  it("a process that ends by itself: wait gives how, and alive turns false", async () => {
    const { service, end } = make()
    const dir = tempDir()
    const started = await Effect.runPromise(service.start(specIn(dir, "sleep", ["100"])))
    groups.push(started.pid)
    const waiting = Effect.runPromise(service.wait(started.pid))
    end(started.pid)
    expect(await waiting).toEqual({ code: null, signal: "SIGKILL" })
    expect(service.alive(started.pid, started.startTicks)).toBe(false)
  })
})

describe("ServiceProcesses (test layer)", () => {
  it("fails start as scripted, records stops with their grace, and is a Layer for the tag", async () => {
    const fake = makeServiceProcessesTest()
    fake.failStart("service svc: cannot start x: ENOENT")
    const failed = await Effect.runPromise(Effect.either(fake.service.start(specIn("/", "x", []))))
    expect(Either.isLeft(failed) && failed.left.reason).toBe("spawn-failed")
    fake.failStart(null)
    const pid = await Effect.runPromise(
      Effect.gen(function* () {
        const processes = yield* ServiceProcesses
        const started = yield* processes.start(specIn("/", "x", []))
        yield* processes.stop(started.pid, 1234)
        return started.pid
      }).pipe(Effect.provide(fake.layer))
    )
    expect(fake.started().map((p) => [p.pid, p.stops])).toEqual([[pid, [1234]]])
    await expect(Effect.runPromise(fake.service.wait(999))).rejects.toThrow(/ServiceProcesses.wait: no process 999/)
  })
})
