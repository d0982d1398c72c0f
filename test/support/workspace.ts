import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"

const root = path.resolve(new URL("../..", import.meta.url).pathname)
export const cliEntry = path.join(root, "dist", "src", "cli", "main.js")

/** A scratch workspace with its own tmux socket and config, driven through the built CLI as an operator would. */
export const makeWorkspace = (extraConfig: Record<string, unknown> = {}, extraEnv: Record<string, string | undefined> = {}) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-it-"))
  const workspace = path.join(dir, "workspace")
  const socket = path.join(dir, "tmux.sock")
  const configFile = path.join(dir, "warden.json")
  const { profiles, ...rest } = extraConfig
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      tmuxSocket: socket,
      allowedRoots: [dir],
      allowRoot: true,
      minFreeDiskMb: 10,
      minFreeMemoryMb: 10,
      ...rest,
      profiles: {
        // A shell command as an agent, with `[y/n]` questions and a `demo>` idle prompt.
        shell: {
          command: "bash",
          args: ["-c", "{command}"],
          prompt: { mode: "file" },
          completion: { sources: ["signal", "status-file", "marker", "exit"], doneMarker: "^WARDEN_DONE$", waitingPatterns: ["\\[y/n\\]\\s*$"] },
          retry: { maxAttempts: 1, backoffInitialMs: 300 }
        },
        "shell-tui": {
          command: "bash",
          args: ["-c", "{command}"],
          prompt: { mode: "keys", readyPattern: "^demo> ?$", readyTimeoutMs: 10000 },
          completion: { sources: ["signal", "idle-prompt"], idlePrompt: "^demo> ?$", idleSettleMs: 400, waitingPatterns: ["Trust this folder\\? \\[y/n\\]\\s*$"] },
          retry: { maxAttempts: 1 }
        },
        ...((profiles as object | undefined) ?? {})
      }
    })
  )
  const env = { ...process.env }
  delete env.WARDEN_WORKSPACE
  delete env.WARDEN_CONFIG
  delete env.WARDEN_BEAD
  delete env.WARDEN_ATTEMPT
  for (const [key, value] of Object.entries(extraEnv)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  const args = (extra: string[]) => [cliEntry, "--workspace", workspace, "--config", configFile, ...extra]

  const makeRepo = (name: string, files: Record<string, string> = { "README.md": "# scratch\n" }) => {
    const repo = path.join(dir, name)
    fs.mkdirSync(repo, { recursive: true })
    git(repo, "init", "-q", "-b", "main")
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(repo, file), text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo
  }

  return {
    dir,
    workspace,
    socket,
    configFile,
    makeRepo,
    /** Runs `warden ARGS` to its end (asynchronously, so the test worker stays responsive). */
    warden: (...extra: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, args(extra), { env, stdio: ["ignore", "pipe", "pipe"] })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
        child.on("close", (status) => resolve({ status, stdout, stderr }))
      }),
    /** Starts `warden ARGS` in the background. */
    start: (...extra: string[]): ChildProcess & { output: () => string } => {
      const child = spawn(process.execPath, args(extra), { env, stdio: ["ignore", "pipe", "pipe"] })
      let output = ""
      child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      return Object.assign(child, { output: () => output })
    },
    runFile: (bead: string) => path.join(workspace, "state", "runs", `${bead}.json`),
    resultFile: (bead: string) => path.join(workspace, "state", "results", `${bead}.json`),
    readRun: (bead: string) => readJson(path.join(workspace, "state", "runs", `${bead}.json`)),
    readResult: (bead: string) => readJson(path.join(workspace, "state", "results", `${bead}.json`)),
    memory: () => {
      const dirPath = path.join(workspace, "memory")
      return fs.existsSync(dirPath) ? fs.readdirSync(dirPath).map((f) => fs.readFileSync(path.join(dirPath, f), "utf8")).join("") : ""
    },
    tmux: (...extra: string[]) => spawnSync("tmux", ["-S", socket, ...extra], { encoding: "utf8" }),
    /** Starts the built daemon for this workspace and waits until it is ready; `base` is its API's URL. */
    startDaemon: async (...extra: string[]): Promise<{ child: ChildProcess; port: number; token: string; base: string }> => {
      const infoFile = path.join(workspace, "state", "daemon.json")
      // A daemon an earlier test left running is that test's bug: named here, never killed to make room.
      let holder: { pid?: unknown } = {}
      try {
        holder = JSON.parse(fs.readFileSync(path.join(workspace, "state", "daemon.lock"), "utf8")) as { pid?: unknown }
      } catch {
        // no lock file, or an empty one (a daemon stopped cleanly empties it): nobody holds the workspace
      }
      if (typeof holder.pid === "number" && fs.existsSync(`/proc/${holder.pid}`) && !fs.readFileSync(`/proc/${holder.pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z")) {
        throw new Error(`a daemon an earlier test started (pid ${holder.pid}) still holds ${workspace}: that test did not stop it`)
      }
      fs.rmSync(infoFile, { force: true })
      const child = spawn(process.execPath, args(["daemon", "--port", "0", ...extra]), { env, stdio: "ignore" })
      const info = await eventually(() => {
        try {
          return JSON.parse(fs.readFileSync(infoFile, "utf8")) as { port: number }
        } catch {
          return null
        }
      }, 20_000, "the daemon ready")
      const token = fs.readFileSync(path.join(workspace, "state", "api-token"), "utf8").trim()
      return { child, port: info.port, token, base: `http://127.0.0.1:${info.port}` }
    },
    /**
     * Ends the workspace's tmux server and removes its folder (the workspace, its repos, its config). Call it
     * once its daemons are stopped; the removal is tidying only, so a folder something still writes in is left.
     */
    cleanup: () => {
      spawnSync("tmux", ["-S", socket, "kill-server"])
      try {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch {
        // Still being written (a process the test's own checks will name): left in the temp folder.
      }
    }
  }
}

export type Workspace = ReturnType<typeof makeWorkspace>

export const git = (repo: string, ...args: string[]) =>
  spawnSync("git", ["-c", "user.name=warden-test", "-c", "user.email=test@localhost", ...args], { cwd: repo, encoding: "utf8" })

export const readJson = (file: string): any => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))
  } catch {
    return null
  }
}

/** `jq -r FILTER FILE`, as an operator would read the records. */
export const jq = (filter: string, ...files: string[]): string => {
  const result = spawnSync("jq", ["-r", filter, ...files], { encoding: "utf8" })
  if (result.status !== 0) throw new Error(`jq ${filter} failed: ${result.stderr}`)
  return result.stdout.trim()
}

/** Waits until `check` returns a truthy value (tests only; the product is event-driven). */
export const eventually = async <T>(check: () => T | null | undefined | false, timeoutMs = 20_000, what = "condition"): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export const exited = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on("exit", (code) => resolve(code))
  })

/**
 * The built daemon of `ws` for one test file: started before its tests (with `args`), stopped with
 * SIGTERM and the workspace cleaned up after them; `api` calls it with the token.
 */
export const useDaemon = (ws: Workspace, ...args: string[]) => {
  const state = { child: null as ChildProcess | null, base: "", token: "" }
  beforeAll(async () => {
    const started = await ws.startDaemon(...args)
    state.child = started.child
    state.base = started.base
    state.token = started.token
  })
  afterAll(async () => {
    if (state.child !== null) {
      state.child.kill("SIGTERM")
      await exited(state.child)
    }
    ws.cleanup()
  })
  /** A JSON request with the token; `body` as a string is sent as it is. */
  const api = async (method: string, route: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${state.base}${route}`, {
      method,
      headers: { authorization: `Bearer ${state.token}`, "content-type": "application/json", ...headers },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
    })
    return { status: response.status, json: (await response.json().catch(() => null)) as any }
  }
  return {
    api,
    get child(): ChildProcess {
      return state.child!
    },
    get base(): string {
      return state.base
    },
    get token(): string {
      return state.token
    }
  }
}


/** A free port on 127.0.0.1 (asked of the kernel, then let go) for a service a test configures. */
export const freePort = (): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no free port"))))
    })
  })

/** The demo's small HTTP service (`src/demo/demoService.ts`, built): /health, POST /crash, POST /sick. */
export const demoServiceScript = path.join(root, "dist", "src", "demo", "demoService.js")
