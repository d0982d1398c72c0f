import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The daemon's files, all under the workspace's `state/`. */
export interface DaemonFiles {
  /** Where a running daemon can be found (`DaemonInfo`): written at start, removed at a clean stop. */
  readonly info: string
  readonly lock: string
  readonly token: string
  readonly queue: string
  readonly snapshots: string
  /** Each bead's last dispatch request, for `retry`. */
  readonly requests: string
  /** Present while drain mode is on, so it survives a restart. */
  readonly drain: string
  /** The feed's event log and its high-water sequence number. */
  readonly feed: string
  readonly feedSeq: string
  /** The machine-level events' own stream: its window and its high-water mark. */
  readonly machinesFeed: string
  readonly machinesFeedSeq: string
}

/** Where everything of one workspace lives (the seed's layout, plus transcripts and the agents' `warden` shim). */
export interface WorkspacePaths {
  readonly root: string
  readonly runs: string
  readonly results: string
  readonly watch: string
  readonly transcripts: string
  readonly memory: string
  readonly templates: string
  readonly bin: string
  readonly runFile: (bead: string) => string
  readonly resultFile: (bead: string) => string
  /** The seed's status file, written by the agent: `state/watch/<bead>.status.json`. */
  readonly statusFile: (bead: string) => string
  /** `warden signal` appends here, one JSON line per signal, so no signal overwrites another. */
  readonly signalsFile: (bead: string) => string
  readonly exitFile: (bead: string, attemptId: string) => string
  readonly promptFile: (bead: string, attemptId: string) => string
  readonly launcherFile: (bead: string, attemptId: string) => string
  /** The agent's environment on its way into the pane (mode 0600, removed before the agent starts). */
  readonly envFile: (bead: string, attemptId: string) => string
  /** What the launch of one attempt recorded, so a restored supervisor adopts it instead of launching again. */
  readonly launchRecordFile: (bead: string, attemptId: string) => string
  /** Claude Code settings with Warden's hooks, for one attempt (`--settings`). */
  readonly settingsFile: (bead: string, attemptId: string) => string
  readonly transcriptFile: (bead: string, attemptId: string) => string
  /** Where each bead's machine events (states entered, events received) are kept, for replay: as long as its records. */
  readonly history: string
  readonly historyFile: (bead: string) => string
  /** The daemon's files. */
  readonly daemon: DaemonFiles
}

export const expandHome = (p: string): string =>
  p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p

export const defaultWorkspace = (): string => path.join(os.homedir(), ".openclaw", "workspace")

export const workspacePaths = (rootDir: string): WorkspacePaths => {
  const root = path.resolve(expandHome(rootDir))
  const state = path.join(root, "state")
  const watch = path.join(state, "watch")
  const transcripts = path.join(state, "transcripts")
  return {
    root,
    runs: path.join(state, "runs"),
    results: path.join(state, "results"),
    watch,
    transcripts,
    memory: path.join(root, "memory"),
    templates: path.join(root, "templates"),
    bin: path.join(root, "bin"),
    runFile: (bead) => path.join(state, "runs", `${bead}.json`),
    resultFile: (bead) => path.join(state, "results", `${bead}.json`),
    statusFile: (bead) => path.join(watch, `${bead}.status.json`),
    signalsFile: (bead) => path.join(watch, `${bead}.signals.jsonl`),
    exitFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.exit.json`),
    promptFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.prompt.md`),
    launcherFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.launch.sh`),
    envFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.env`),
    launchRecordFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.launched.json`),
    settingsFile: (bead, attemptId) => path.join(watch, `${bead}.${attemptId}.settings.json`),
    transcriptFile: (bead, attemptId) => path.join(transcripts, `${bead}.${attemptId}.log`),
    history: path.join(state, "history"),
    historyFile: (bead) => path.join(state, "history", `${bead}.jsonl`),
    daemon: {
      info: path.join(state, "daemon.json"),
      lock: path.join(state, "daemon.lock"),
      token: path.join(state, "api-token"),
      queue: path.join(state, "queue.json"),
      snapshots: path.join(state, "snapshots"),
      requests: path.join(state, "requests"),
      drain: path.join(state, "drain.json"),
      feed: path.join(state, "feed.jsonl"),
      feedSeq: path.join(state, "feed.seq"),
      machinesFeed: path.join(state, "machines.jsonl"),
      machinesFeedSeq: path.join(state, "machines.seq")
    }
  }
}

/** The installed Warden package's root (holds `config/`, `templates/`, `dist/`). */
export const wardenHome = (): string => {
  // This file is dist/src/workspace/paths.js when built, src/workspace/paths.ts under vitest.
  const here = path.dirname(fileURLToPath(import.meta.url))
  const up = here.includes(`${path.sep}dist${path.sep}`) ? "../../.." : "../.."
  return path.resolve(here, up)
}

/** The CLI entry point agents call as `warden` (through the shim in the workspace's `bin/`). */
export const wardenCliEntry = (): string => path.join(wardenHome(), "dist", "src", "cli", "main.js")
