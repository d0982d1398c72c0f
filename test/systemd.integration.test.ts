import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { loadConfigSync } from "../src/config/loadConfig.js"
import { cliEntry, eventually, exited, makeWorkspace } from "./support/workspace.js"

const unit = new URL("../systemd/warden.service", import.meta.url).pathname

describe("systemd", () => {
  it("the unit passes systemd-analyze verify and says what it must", () => {
    const verify = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" })
    expect(verify.status, verify.stderr).toBe(0)
    const text = fs.readFileSync(unit, "utf8")
    for (const line of [
      "Type=notify",
      "NotifyAccess=all",
      "WatchdogSec=30",
      "Restart=on-failure",
      "KillMode=process",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "EnvironmentFile=-/etc/warden/warden.env",
      // A cgroup per attempt under the unit's own (agents never outlive their session).
      "Delegate=yes"
    ]) {
      expect(text).toContain(`\n${line}\n`)
    }
    expect(text).not.toMatch(/^ProtectControlGroups=(yes|true|1)$/m)
    expect(fs.existsSync(new URL("../systemd/warden.env.example", import.meta.url))).toBe(true)
  })

  it("the unit, its example config and its environment file agree", () => {
    const text = fs.readFileSync(unit, "utf8")
    const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].flatMap((m) => m[1]!.trim().split(/\s+/))
    expect(values("StateDirectory")).toEqual(["warden"])
    const environment = Object.fromEntries(values("Environment").map((pair) => pair.split("=") as [string, string]))
    expect(environment.WARDEN_WORKSPACE!.startsWith("/var/lib/warden/")).toBe(true)
    // A missing repo root must not stop the unit from starting.
    const writable = values("ReadWritePaths")
    expect(writable).toContain("-/srv/repos")
    // The config the unit names is the example, installed; it decodes, and lets the daemon work where the unit lets it write.
    expect(environment.WARDEN_CONFIG).toBe("/etc/warden/warden.json")
    const example = new URL("../systemd/warden.json.example", import.meta.url).pathname
    const loaded = loadConfigSync({ config: example, env: {} })
    if (Either.isLeft(loaded)) throw new Error(loaded.left.message)
    const config = loaded.right
    const writableRoots = ["/var/lib/warden", ...writable.map((p) => p.replace(/^-/, ""))]
    for (const root of config.allowedRoots) expect(writableRoots.some((w) => root === w || root.startsWith(`${w}/`)), root).toBe(true)
    expect(config.tmuxSocket.startsWith("/var/lib/warden/")).toBe(true)
    expect(config.operatorsGroup).toBe(values("Group")[0])
    // An empty KEY= would set an empty key: every key in the example is commented out.
    const envExample = fs.readFileSync(new URL("../systemd/warden.env.example", import.meta.url), "utf8")
    expect(envExample).not.toMatch(/^[A-Z_]*(KEY|TOKEN)[A-Z_]*=/m)
  })

  const ws = makeWorkspace()
  afterAll(() => ws.cleanup())

  it("the daemon, run as a non-root user, is the notifier: ready after restoring, watchdog pings and stopping, each held until systemd's barrier", async () => {
    // A stand-in for systemd's notify socket: it reads each datagram with the sender's credentials
    // (SO_PASSCRED), looks the sender up in /proc while it still holds the barrier, prints that, and
    // answers BARRIER=1 as systemd does, by closing the file descriptor that came with it.
    const dir = fs.mkdtempSync(path.join(ws.dir, "notify-"))
    fs.chmodSync(ws.dir, 0o755)
    fs.chmodSync(dir, 0o777)
    const socketPath = path.join(dir, "notify.sock")
    const receiver = [
      "import socket, sys, os, struct, json, array",
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)",
      "s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)",
      "while True:",
      "  msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))",
      "  pid = uid = None; fds = []",
      "  for level, kind, data in anc:",
      "    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS: pid, uid, gid = struct.unpack('iII', data[:12])",
      "    elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS: fds.extend(array.array('i', data[:len(data) - len(data) % 4]))",
      "  ppid = None",
      "  try:",
      "    stat = open('/proc/%d/stat' % pid).read(); ppid = int(stat[stat.rindex(')') + 2:].split()[1])",
      "  except Exception: pass",
      "  print(json.dumps({'text': msg.decode(), 'pid': pid, 'uid': uid, 'ppid': ppid, 'fds': len(fds)}), flush=True)",
      "  for fd in fds: os.close(fd)"
    ].join("\n")
    const listener = spawn("python3", ["-c", receiver, socketPath], { stdio: ["ignore", "pipe", "inherit"] })
    let received = ""
    listener.stdout!.on("data", (chunk: Buffer) => (received += chunk.toString()))
    const messages = () =>
      received
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as { text: string; pid: number; uid: number; ppid: number | null; fds: number })
    await eventually(() => fs.existsSync(socketPath), 5_000, "the notify socket")
    // The daemon runs as nobody, in a workspace of its own, as it would under the unit's User=.
    const home = path.join(dir, "home")
    fs.mkdirSync(home)
    fs.chownSync(home, 65534, 65534)
    const config = path.join(dir, "warden.json")
    fs.writeFileSync(config, JSON.stringify({ tmuxSocket: path.join(home, "tmux.sock"), allowedRoots: [home] }), { mode: 0o644 })
    const daemon = spawn(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "--", process.execPath, cliEntry, "--workspace", path.join(home, "workspace"), "--config", config, "daemon", "--port", "0"],
      { env: { ...process.env, HOME: home, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "1000000" }, stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    daemon.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    daemon.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    try {
      await eventually(() => messages().some((m) => m.text.includes("READY=1")), 20_000, `READY=1 (daemon said: ${output})`)
      await eventually(() => messages().filter((m) => m.text === "WATCHDOG=1").length >= 2, 5_000, "two watchdog pings")
      daemon.kill("SIGTERM")
      expect(await exited(daemon)).toBe(0)
      await eventually(() => messages().some((m) => m.text === "STOPPING=1"), 5_000, "STOPPING=1")
      const all = messages()
      const ready = all.find((m) => m.text.includes("READY=1"))!
      expect(ready.text).toMatch(/STATUS=0 session\(s\) restored; API on 127\.0\.0\.1:\d+/)
      const statements = all.filter((m) => m.text !== "BARRIER=1")
      for (const message of statements) {
        // Sent as the daemon's user, by a process of the daemon's that was alive when it was read.
        expect(message.uid).toBe(65534)
        expect(message.ppid, JSON.stringify(message)).toBe(daemon.pid)
        // ... and that then waited for systemd's barrier before it exited.
        const next = all[all.indexOf(message) + 1]
        expect(next, `a barrier after ${message.text}`).toMatchObject({ text: "BARRIER=1", pid: message.pid, fds: 1 })
      }
    } finally {
      daemon.kill("SIGKILL")
      listener.kill()
    }
  })
})
