import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
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

  const ws = makeWorkspace()
  afterAll(() => ws.cleanup())

  it("the daemon tells a notify socket it is ready after restoring, pings the watchdog, and says it is stopping", async () => {
    // A stand-in for systemd's notify socket: a unix datagram socket that prints what it receives.
    const socketPath = path.join(ws.dir, "notify.sock")
    const listener = spawn(
      "python3",
      ["-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nwhile True:\n  print(s.recv(4096).decode(),flush=True)", socketPath],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let received = ""
    listener.stdout!.on("data", (chunk: Buffer) => (received += chunk.toString()))
    await eventually(() => fs.existsSync(socketPath), 5_000, "the notify socket")
    const daemon = spawn(process.execPath, [cliEntry, "--workspace", ws.workspace, "--config", ws.configFile, "daemon", "--port", "0"], {
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "1000000" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    try {
      await eventually(() => received.includes("READY=1"), 20_000, "READY=1")
      expect(received).toMatch(/STATUS=0 session\(s\) restored; API on 127\.0\.0\.1:\d+/)
      await eventually(() => received.split("WATCHDOG=1").length > 2, 5_000, "two watchdog pings")
      daemon.kill("SIGTERM")
      expect(await exited(daemon)).toBe(0)
      await eventually(() => received.includes("STOPPING=1"), 5_000, "STOPPING=1")
    } finally {
      daemon.kill("SIGKILL")
      listener.kill()
    }
  })
})
