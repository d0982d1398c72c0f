import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as vm from "node:vm"
import { Effect, Either } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { SystemdUnits, parseShowOutput, systemdUnitsLayer } from "../src/services/SystemdUnits.js"
import { SystemdError } from "../src/services/systemdErrors.js"

/**
 * systemd mode talks to systemd only through `systemctl`. No systemd runs here, so the tests put a
 * stand-in `systemctl` first on PATH (test/fixtures/systemctl): it prints `show`'s Key=Value lines
 * from a state file the test writes, in the real command's order, and logs every call.
 */

const standIn = new URL("./fixtures/systemctl", import.meta.url).pathname
const rules = new URL("../systemd/warden-services.rules", import.meta.url).pathname

let dirs: string[] = []
afterEach(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  dirs = []
})

/** A temp dir with `bin/systemctl` (the stand-in), its state under `state/`, and the units it knows. */
const setup = (units: Record<string, string> = {}) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-systemctl-"))
  dirs.push(dir)
  const bin = path.join(dir, "bin")
  const state = path.join(dir, "state")
  fs.mkdirSync(bin)
  fs.mkdirSync(path.join(state, "units"), { recursive: true })
  fs.symlinkSync(standIn, path.join(bin, "systemctl"))
  for (const [unit, text] of Object.entries(units)) fs.writeFileSync(path.join(state, "units", unit), text)
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, SYSTEMCTL_STANDIN_DIR: state }
  const run = <A>(use: (units: SystemdUnits["Type"]) => Effect.Effect<A, SystemdError>) =>
    Effect.runPromise(Effect.either(Effect.flatMap(SystemdUnits, use).pipe(Effect.provide(systemdUnitsLayer({ env })))))
  const calls = () => {
    const log = path.join(state, "calls.log")
    return fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter((line) => line !== "") : []
  }
  const unitFile = (unit: string) => fs.readFileSync(path.join(state, "units", unit), "utf8")
  return { dir, state, env, run, calls, unitFile }
}

const right = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw new Error(`expected success, got ${String(either.left)}`)
  return either.right
}
const left = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) throw new Error(`expected a failure, got ${JSON.stringify(either.right)}`)
  return either.left
}

// What `systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result UNIT` prints on systemd 252:
// the Service interface's properties first (MainPID, Result, NRestarts), then the Unit's.
const FAILED = "MainPID=0\nResult=exit-code\nNRestarts=3\nActiveState=failed\nSubState=failed\n"
const RUNNING = "MainPID=4242\nResult=success\nNRestarts=0\nActiveState=active\nSubState=running\n"

describe("parsing systemctl show", () => {
  it("reads a failed unit: MainPID=0 is no process, Result=exit-code, ActiveState=failed", async () => {
    const status = right(await Effect.runPromise(Effect.either(parseShowOutput("gw.service", FAILED))))
    expect(status).toEqual({ activeState: "failed", subState: "failed", mainPid: null, nRestarts: 3, result: "exit-code" })
  })

  it("reads a running unit in any order of lines", async () => {
    const shuffled = RUNNING.split("\n").reverse().join("\n")
    const status = right(await Effect.runPromise(Effect.either(parseShowOutput("gw.service", shuffled))))
    expect(status).toEqual({ activeState: "active", subState: "running", mainPid: 4242, nRestarts: 0, result: "success" })
  })

  it("refuses unknown, missing, repeated or non-numeric keys, naming them", async () => {
    const fails = async (text: string) => left(await Effect.runPromise(Effect.either(parseShowOutput("gw.service", text))))
    const unknown = await fails(`${RUNNING}LoadState=loaded\nFoo=bar\n`)
    expect(unknown.reason).toBe("unparseable")
    expect(unknown.message).toContain("unknown keys LoadState, Foo")
    // systemd before 235 has no NRestarts: systemctl leaves it out.
    const missing = await fails("MainPID=0\nResult=success\nActiveState=inactive\n")
    expect(missing.reason).toBe("unparseable")
    expect(missing.message).toContain("missing keys SubState, NRestarts")
    expect((await fails(`${RUNNING}MainPID=7\n`)).message).toContain("MainPID printed twice")
    expect((await fails(RUNNING.replace("MainPID=4242", "MainPID=-1"))).message).toContain("MainPID is not a number")
    expect((await fails(RUNNING.replace("NRestarts=0", "NRestarts="))).message).toContain("NRestarts is not a number")
    expect((await fails(`${RUNNING}garbage\n`)).message).toContain('a line is not Key=Value: "garbage"')
    expect((await fails("")).message).toContain("missing keys ActiveState, SubState, MainPID, NRestarts, Result")
  })
})

describe("SystemdUnits through a systemctl on PATH", () => {
  it("show runs `systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result UNIT` and parses its output", async () => {
    const t = setup({ "gw.service": FAILED, "mail@1.service": RUNNING })
    expect(right(await t.run((u) => u.show("gw.service")))).toEqual({
      activeState: "failed",
      subState: "failed",
      mainPid: null,
      nRestarts: 3,
      result: "exit-code"
    })
    expect(right(await t.run((u) => u.show("mail@1.service"))).mainPid).toBe(4242)
    expect(t.calls()).toEqual([
      "show -p ActiveState,SubState,MainPID,NRestarts,Result gw.service",
      "show -p ActiveState,SubState,MainPID,NRestarts,Result mail@1.service"
    ])
  })

  it("a unit systemd does not know shows as inactive, and restarting it fails with systemctl's words", async () => {
    const t = setup()
    expect(right(await t.run((u) => u.show("nosuch.service")))).toEqual({
      activeState: "inactive",
      subState: "dead",
      mainPid: null,
      nRestarts: 0,
      result: "success"
    })
    const error = left(await t.run((u) => u.restart("nosuch.service")))
    expect(error.reason).toBe("command-failed")
    expect(error.message).toBe("systemctl restart nosuch.service exited with code 5: Failed to restart nosuch.service: Unit nosuch.service not found.")
  })

  it("refuses a unit name with `;`, `..`, spaces, a leading `-` or no `.service`, and runs nothing", async () => {
    const t = setup({ "gw.service": RUNNING })
    const bad = [
      "gw.service; rm -rf /",
      "gw;reboot.service",
      "../gw.service",
      "a..b.service",
      "gw .service",
      " gw.service",
      "gw.service\n",
      "$(id).service",
      "-Hroot@elsewhere.service",
      "gw",
      "gw.socket",
      "",
      "sub/gw.service"
    ]
    for (const unit of bad) {
      for (const verb of ["show", "restart", "start", "stop"] as const) {
        const error = left(await t.run((u) => u[verb](unit)))
        expect(error).toBeInstanceOf(SystemdError)
        expect(error.reason).toBe("invalid-unit")
        expect(error.unit).toBe(unit)
        expect(error.message).toContain(`refused unit name ${JSON.stringify(unit)}`)
      }
    }
    expect(t.calls()).toEqual([])
    expect(t.unitFile("gw.service")).toBe(RUNNING)
  })

  it("restart is recorded once per call and leaves the unit active with a new main pid", async () => {
    const t = setup({ "gw.service": FAILED })
    right(await t.run((u) => u.restart("gw.service")))
    expect(t.calls()).toEqual(["restart gw.service"])
    right(await t.run((u) => u.restart("gw.service")))
    expect(t.calls()).toEqual(["restart gw.service", "restart gw.service"])
    const status = right(await t.run((u) => u.show("gw.service")))
    expect(status.activeState).toBe("active")
    expect(status.subState).toBe("running")
    expect(status.mainPid).toBeGreaterThan(0)
    // NRestarts counts systemd's own restarts only.
    expect(status.nRestarts).toBe(3)
  })

  it("stop and start run `systemctl stop|start UNIT`", async () => {
    const t = setup({ "gw.service": RUNNING })
    right(await t.run((u) => u.stop("gw.service")))
    expect(right(await t.run((u) => u.show("gw.service")))).toMatchObject({ activeState: "inactive", subState: "dead", mainPid: null })
    right(await t.run((u) => u.start("gw.service")))
    expect(right(await t.run((u) => u.show("gw.service")))).toMatchObject({ activeState: "active", subState: "running" })
    expect(t.calls().filter((line) => !line.startsWith("show "))).toEqual(["stop gw.service", "start gw.service"])
  })

  it("a systemctl that exits non-zero is command-failed with its stderr", async () => {
    const t = setup({ "gw.service": RUNNING })
    fs.writeFileSync(path.join(t.state, "restart.exit"), "4\n")
    fs.writeFileSync(path.join(t.state, "restart.stderr"), "Failed to restart gw.service: Access denied\nSee system logs and 'systemctl status gw.service' for details.\n")
    const error = left(await t.run((u) => u.restart("gw.service")))
    expect(error.reason).toBe("command-failed")
    expect(error.unit).toBe("gw.service")
    expect(error.message).toBe(
      "systemctl restart gw.service exited with code 4: Failed to restart gw.service: Access denied\nSee system logs and 'systemctl status gw.service' for details."
    )
    fs.writeFileSync(path.join(t.state, "show.exit"), "1\n")
    fs.writeFileSync(path.join(t.state, "show.stderr"), "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n")
    const show = left(await t.run((u) => u.show("gw.service")))
    expect(show.reason).toBe("command-failed")
    expect(show.message).toContain("exited with code 1: System has not been booted with systemd")
  })

  it("a systemctl that prints what was not asked for is unparseable", async () => {
    const t = setup({ "gw.service": RUNNING })
    // The stand-in prints only asked-for keys, so a property systemd lacks (NRestarts before 235) is simply left out.
    fs.writeFileSync(path.join(t.state, "units", "gw.service"), RUNNING.replace("NRestarts=0\n", ""))
    const error = left(await t.run((u) => u.show("gw.service")))
    expect(error.reason).toBe("unparseable")
    expect(error.message).toContain("systemctl show gw.service: missing keys NRestarts")
  })

  it("no systemctl on PATH is spawn-failed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-nosystemctl-"))
    dirs.push(dir)
    const env = { PATH: dir }
    const result = await Effect.runPromise(
      Effect.either(Effect.flatMap(SystemdUnits, (u) => u.restart("gw.service")).pipe(Effect.provide(systemdUnitsLayer({ env }))))
    )
    const error = left(result)
    expect(error.reason).toBe("spawn-failed")
    expect(error.message).toContain("systemctl restart gw.service: systemctl not found on PATH")
  })
})

describe("the polkit rule (systemd/warden-services.rules)", () => {
  it("parses as JavaScript", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-polkit-"))
    dirs.push(dir)
    const copy = path.join(dir, "warden-services.js")
    fs.copyFileSync(rules, copy)
    const check = spawnSync(process.execPath, ["--check", copy], { encoding: "utf8" })
    expect(check.status, check.stderr).toBe(0)
  })

  it("says YES only to the daemon's user restarting, starting or stopping a listed unit", () => {
    const text = fs.readFileSync(rules, "utf8")
    expect(text).toContain("PLACEHOLDER: the daemon's user")
    expect(text).toContain("EDIT BEFORE INSTALLING")
    const added: Array<(action: unknown, subject: unknown) => unknown> = []
    const polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: null }, addRule: (rule: (typeof added)[number]) => added.push(rule) }
    vm.runInNewContext(text, { polkit })
    expect(added).toHaveLength(1)
    const rule = added[0]!
    const ask = (id: string, unit: string, verb: string, user: string) =>
      rule({ id, lookup: (key: string) => ({ unit, verb })[key] }, { user })
    const manage = "org.freedesktop.systemd1.manage-units"
    const listed = "CHANGEME-gateway.service"
    for (const verb of ["restart", "start", "stop"]) expect(ask(manage, listed, verb, "warden")).toBe("yes")
    expect(ask(manage, "CHANGEME-agent-mail.service", "restart", "warden")).toBe("yes")
    for (const verb of ["reload", "kill", "set-property", "reset-failed", "try-restart"]) expect(ask(manage, listed, verb, "warden")).toBeNull()
    expect(ask(manage, "sshd.service", "restart", "warden")).toBeNull()
    expect(ask(manage, listed, "restart", "nobody")).toBeNull()
    expect(ask("org.freedesktop.systemd1.manage-unit-files", listed, "restart", "warden")).toBeNull()
    expect(ask("org.freedesktop.login1.reboot", listed, "restart", "warden")).toBeNull()
  })
})
