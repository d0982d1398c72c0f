import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cliEntry, eventually, exited, makeWorkspace } from "./support/workspace.js"

/** One daemon per workspace, decided by the kernel: an exclusive flock(2) on the lock file. */
const ws = makeWorkspace()
const children: ChildProcess[] = []

afterAll(async () => {
  const live = children.filter((child) => child.exitCode === null && child.signalCode === null)
  for (const child of live) child.kill("SIGKILL")
  await Promise.all(live.map((child) => new Promise((resolve) => child.once("exit", resolve))))
  ws.cleanup()
})

/** A pid that names no process: a short-lived child's, once it is reaped. */
const deadPid = async (): Promise<number> => {
  const child = spawn("true")
  await exited(child)
  return child.pid!
}

const startDaemon = () => {
  const child = spawn(process.execPath, [cliEntry, "--workspace", ws.workspace, "--config", ws.configFile, "daemon", "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  children.push(child)
  return Object.assign(child, { output: () => output })
}

describe("the daemon lock", () => {
  it("five daemons started at once on a workspace with a stale lock: exactly one runs, the others refuse naming the holder", async () => {
    const lock = path.join(ws.workspace, "state", "daemon.lock")
    fs.mkdirSync(path.dirname(lock), { recursive: true })
    fs.writeFileSync(lock, JSON.stringify({ pid: await deadPid(), proc_start: "1" }))
    const daemons = Array.from({ length: 5 }, () => startDaemon())
    // Four must give up; the fifth serves until stopped (it is ready once daemon.json names it).
    const info = await eventually(() => {
      try {
        return JSON.parse(fs.readFileSync(path.join(ws.workspace, "state", "daemon.json"), "utf8")) as { pid: number; port: number }
      } catch {
        return null
      }
    }, 30_000, "a daemon ready")
    await eventually(() => daemons.filter((child) => child.exitCode !== null).length >= 4, 30_000, "four daemons refused")
    // A second winner would have had all this time to get ready too.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const running = daemons.filter((child) => child.exitCode === null && child.signalCode === null)
    expect(running.length, daemons.map((d) => d.output()).join("\n---\n")).toBe(1)
    const refused = daemons.filter((child) => !running.includes(child))
    for (const child of refused) {
      expect(child.exitCode).not.toBe(0)
      expect(child.output()).toMatch(/another warden daemon \((pid \d+|a process that has not written its pid yet)\) runs for this workspace/)
    }
    // The lock names the one that runs, and it answers.
    const winner = running[0]!
    expect(JSON.parse(fs.readFileSync(lock, "utf8")).pid).toBe(winner.pid)
    expect(info.pid).toBe(winner.pid)
    expect((await fetch(`http://127.0.0.1:${info.port}/healthz`)).status).toBe(200)

    // Killed with -9, its lock goes with it: the next daemon starts at once.
    winner.kill("SIGKILL")
    await new Promise((resolve) => winner.once("exit", resolve))
    const next = startDaemon()
    await eventually(() => {
      try {
        return JSON.parse(fs.readFileSync(lock, "utf8")).pid === next.pid
      } catch {
        return false
      }
    }, 20_000, "the next daemon holding the lock")
    expect(next.exitCode).toBeNull()
    next.kill("SIGTERM")
    expect(await exited(next)).toBe(0)
  }, 60_000)

  it("a lock file whose holder has not written its pid yet is still held: the lock, not the content, decides", async () => {
    const other = makeWorkspace()
    const lock = path.join(other.workspace, "state", "daemon.lock")
    fs.mkdirSync(path.dirname(lock), { recursive: true })
    // A daemon between creating the file and writing its pid: the file is empty, the lock is held.
    const fd = fs.openSync(lock, "w")
    expect(spawnSync("flock", ["-xn", "3"], { stdio: ["ignore", "ignore", "inherit", fd] }).status).toBe(0)
    const child = spawn(process.execPath, [cliEntry, "--workspace", other.workspace, "--config", other.configFile, "daemon", "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    let output = ""
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const code = await Promise.race([exited(child), new Promise((resolve) => setTimeout(() => resolve("running"), 15_000))])
    expect(code, output).not.toBe("running")
    expect(code).not.toBe(0)
    expect(output).toMatch(/another warden daemon \(a process that has not written its pid yet\) runs for this workspace/)
    fs.closeSync(fd)
    other.cleanup()
  }, 30_000)
})

