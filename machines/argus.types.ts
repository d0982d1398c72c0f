/**
 * Argus's vocabulary: what it observes, the five actions it may take (a closed union), the decisions it
 * audits, its policy (compiled from config) and what it remembers across cycles. Pure: no imports.
 */

/** A supervised service as the tree sees it; `state` is a service machine state name (`running.healthy`, `failed`, ...). */
export type ServiceObservation = { readonly name: string; readonly state: string; readonly restarts: number }

/** An agent-program process that belongs to no live session. */
export type ProcessObservation = {
  readonly pid: number
  /** Its start time (field 22 of `/proc/PID/stat`): with the pid, the process's identity. */
  readonly startTicks: number
  /** `/proc/PID/exe`. */
  readonly exe: string
  readonly ageSeconds: number
  /** `WARDEN_ATTEMPT` from `/proc/PID/environ`, when it carries one of a finished or unknown attempt. */
  readonly attemptId: string | null
  readonly inAgentCgroup: boolean
  readonly uid: number
  /** How many consecutive cycles it has been seen, this one included (the machine counts, from memory). */
  readonly seenCycles: number
}

/** An `agent-*` session on the agents' tmux socket; `live` when its bead is live. */
export type TmuxObservation = { readonly session: string; readonly bead: string | null; readonly live: boolean }

export interface Observations {
  /** When they were taken (epoch ms): the cycle's `now`. */
  readonly at: number
  readonly memoryUsedPercent: number
  readonly diskUsedPercent: number
  readonly load1: number
  readonly cores: number
  readonly services: ReadonlyArray<ServiceObservation>
  readonly orphans: ReadonlyArray<ProcessObservation>
  readonly tmux: ReadonlyArray<TmuxObservation>
  readonly stalledSessions: ReadonlyArray<{ readonly bead: string; readonly state: string; readonly forSeconds: number }>
  readonly recentFailures: ReadonlyArray<{ readonly reason: string; readonly count: number }>
}

/** The allowlist: the only effects Argus can ever ask for. */
export type ArgusAction =
  | { readonly type: "restart_service"; readonly target: string; readonly reason: string }
  | { readonly type: "kill_pid"; readonly target: number; readonly reason: string }
  | { readonly type: "kill_tmux"; readonly target: string; readonly reason: string }
  /** `target`: the problem's key (alerts are deduplicated per key for an hour). */
  | { readonly type: "alert"; readonly target: string; readonly reason: string; readonly message: string }
  /** A line in `argus/observations.md`. */
  | { readonly type: "log"; readonly target: string; readonly reason: string; readonly message: string }

export type ArgusActionType = ArgusAction["type"]

/** `done`: accepted and to be carried out; `dry-run`: accepted, audited only; `refused`: outside the allowlist, with why. */
export type Verdict = "done" | "refused" | "dry-run"

export interface Decision {
  /** The action as validated; for a refused one, a bounded summary of what was asked. */
  readonly action: ArgusAction | { readonly type: string; readonly target?: unknown; readonly reason?: unknown }
  readonly source: "rules" | "llm"
  readonly verdict: Verdict
  /** Why, in words. */
  readonly why: string
}

/** A decision the allowlist accepted: the only kind `act` ever receives (with verdict `done`). */
export interface AcceptedDecision extends Decision {
  readonly action: ArgusAction
  readonly verdict: "done" | "dry-run"
}

export interface ArgusPolicy {
  /** Between cycles (default 300000). */
  readonly intervalMs: number
  /** Audit without acting. */
  readonly dryRun: boolean
  /** Accepted actions per cycle; the rest are refused (default 5). */
  readonly maxActionsPerCycle: number
  /** An orphan younger than this is never killed (default 300). */
  readonly graceSeconds: number
  /** An orphan (or a dead bead's tmux session) must be seen in this many cycles before it may be killed (default 3). */
  readonly orphanCycles: number
  /** A session stalled or waiting for input this long is alerted (and wakes Argus then; default 900). */
  readonly stalledSeconds: number
  /** Names in config: `restart_service` only for these. */
  readonly services: ReadonlyArray<string>
  /** Absolute paths of the agents' programs (as `/proc/PID/exe` shows them). */
  readonly agentExecutables: ReadonlyArray<string>
  readonly agentsUid: number
  /** Never killed: the daemon, its ancestors, its services, 1. */
  readonly protectedPids: ReadonlyArray<number>
}

/** What Argus remembers across cycles. */
export interface ArgusMemory {
  /** `${pid}:${startTicks}` (or `tmux:<session>`) -> consecutive cycles seen; a key not seen in a cycle is dropped. */
  readonly orphanSeen: Readonly<Record<string, number>>
  /** Service -> when Argus restarted it (its last restarts, each within an hour of the next): cooldown 60 s, then 300 s, then none for an hour. */
  readonly restartsDone: Readonly<Record<string, ReadonlyArray<number>>>
  /** Problem key -> when it was last alerted (dedup: one hour). */
  readonly alertsSent: Readonly<Record<string, number>>
  /** The last cycle's refusals. */
  readonly refused: ReadonlyArray<Decision>
}

export const emptyMemory: ArgusMemory = { orphanSeen: {}, restartsDone: {}, alertsSent: {}, refused: [] }
