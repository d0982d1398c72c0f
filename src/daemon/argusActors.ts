import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { fromPromise } from "xstate"
import { argusMachine, type ActOutput, type ArgusCycle } from "../../machines/argus.machine.js"
import type { ArgusPolicy, Observations, ProcessObservation } from "../../machines/argus.types.js"
import type { ResolvedConfig } from "../config/loadConfig.js"
import type { EffectRunner } from "../sessions/effectRunner.js"
import { machineLoad, procStat, processesRunning, scanProcess } from "../system/processScan.js"
import { Terminals } from "../terminals/Terminals.js"
import type { WorkspacePaths } from "../workspace/paths.js"
import type { ServiceView } from "./serviceSupervision.js"
import type { ArgusAdvisor } from "../argus/ArgusAdvisor.js"
import { decideWithAdvisor } from "../argus/llmDecider.js"

/** What Argus sees of the daemon, and the one way it may act on a service. */
export interface ArgusWorld {
  readonly services: () => ReadonlyArray<ServiceView>
  /** The attempt ids of the sessions the daemon supervises now. */
  readonly liveAttempts: () => ReadonlySet<string>
  readonly liveBeads: () => ReadonlySet<string>
  readonly stalled: () => ReadonlyArray<{ readonly bead: string; readonly state: string; readonly forSeconds: number }>
  /** Failed attempts of the last hour, counted by reason. */
  readonly recentFailures: () => ReadonlyArray<{ readonly reason: string; readonly count: number }>
  readonly restartService: (name: string) => void
  readonly publish: (type: string, data: unknown) => void
  /** The configured alert channels (Telegram, webhook, command). */
  readonly alert: (problem: string, text: string) => void
  readonly log: (message: string, detail?: Record<string, unknown>) => void
}

/** Where Argus writes: `argus/decisions.jsonl` (every decision, carried out or refused, and why) and `argus/observations.md`. */
export const argusFiles = (paths: WorkspacePaths) => {
  const dir = path.join(paths.root, "argus")
  return { dir, decisions: path.join(dir, "decisions.jsonl"), observations: path.join(dir, "observations.md") }
}

/** The executables the agents run as (/proc/PID/exe): each profile's program, and a script's interpreter. */
export const agentExecutables = (config: ResolvedConfig, env: NodeJS.ProcessEnv = process.env): ReadonlyArray<string> => {
  const found = new Set<string>()
  const onPath = (name: string): string | null => {
    const candidates = name.includes("/") ? [name] : (env.PATH ?? "").split(":").filter((d) => d !== "").map((d) => path.join(d, name))
    for (const candidate of candidates) {
      try {
        return fs.realpathSync(candidate)
      } catch {
        // not in this PATH entry: the next one
      }
    }
    return null
  }
  for (const profile of Object.values(config.profiles)) {
    const program = onPath(profile.command)
    if (program === null) continue
    found.add(program)
    let head = ""
    try {
      head = fs.readFileSync(program, { encoding: "utf8", flag: "r" }).slice(0, 200)
    } catch {
      // unreadable: only the program itself is known
    }
    const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(head)
    if (shebang !== null) {
      const interpreter = path.basename(shebang[1]!) === "env" && shebang[2] !== undefined ? onPath(shebang[2]) : onPath(shebang[1]!)
      if (interpreter !== null) found.add(interpreter)
    }
  }
  return [...found].sort()
}

/** The cgroup path (as /proc/PID/cgroup shows it) under which this daemon puts its agents' cgroups. */
const ownAgentCgroups = (): string | null => {
  try {
    const own = /^0::(.*)$/m.exec(fs.readFileSync("/proc/self/cgroup", "utf8"))?.[1]
    return own === undefined ? null : `${own === "/" ? "" : own}/warden-agents/`
  } catch {
    // no cgroup v2: agents are judged by their environment alone
    return null
  }
}

/** This process and its ancestors, and pid 1: never Argus's to kill. */
export const protectedPids = (): ReadonlyArray<number> => {
  const pids = new Set<number>([1, process.pid])
  let pid = process.ppid
  while (pid > 1 && !pids.has(pid)) {
    pids.add(pid)
    const stat = procStat(pid)
    // The chain ends where a parent cannot be read.
    if (stat === null) break
    pid = stat.ppid
  }
  return [...pids].sort((a, b) => a - b)
}

/** Argus's policy, its machine's input, from the config. */
export const argusPolicy = (config: ResolvedConfig): ArgusPolicy => ({
  intervalMs: Math.round(config.argus.intervalSeconds * 1000),
  dryRun: config.argus.dryRun,
  maxActionsPerCycle: config.argus.maxActionsPerCycle,
  graceSeconds: config.argus.graceSeconds,
  orphanCycles: config.argus.orphanCycles,
  stalledSeconds: config.argus.stalledSeconds,
  services: Object.keys(config.services),
  agentExecutables: agentExecutables(config),
  agentsUid: process.getuid?.() ?? 0,
  protectedPids: protectedPids()
})

/**
 * Argus's effects. `collect` observes; `decide` asks the rules, or the configured LLM (its answer only
 * advice, the rules deciding when it fails); `act` carries
 * out only what `validate` accepted (a kill re-checks its pid and start time
 * right before the signal; no shell command is ever run); `audit` writes
 * every decision and tells the feed.
 */
export const argusLogic = (runtime: EffectRunner<Terminals | ArgusAdvisor>, world: ArgusWorld, paths: WorkspacePaths, policy: ArgusPolicy) => {
  const files = argusFiles(paths)
  /** Where this daemon's agents' cgroups are (`warden-agents` under its own cgroup), or null without cgroup v2. */
  const agentCgroups = ownAgentCgroups()
  /** The orphans of the last collection, by pid: a kill must find the same process (pid and start time). */
  let lastOrphans = new Map<number, ProcessObservation>()
  const collect = async (): Promise<Observations> => {
    const live = world.liveAttempts()
    const protectedSet = new Set(policy.protectedPids)
    const orphans = processesRunning(policy.agentExecutables)
      .filter((p) => !protectedSet.has(p.pid))
      .map((p) => ({ ...p, inAgentCgroup: p.cgroup !== null && agentCgroups !== null && p.cgroup.startsWith(agentCgroups) }))
      // An agent process Argus may judge: one of THIS workspace's (its WARDEN_WORKSPACE), carrying an attempt
      // (or sitting in an agent's cgroup) that no live session has. Another workspace's agents are never this
      // daemon's to judge.
      // (The cgroup alone is not enough: daemons of several workspaces may share a parent cgroup.)
      .filter((p) => p.workspace === paths.root && (p.attemptId !== null || p.inAgentCgroup))
      .filter((p) => p.attemptId === null || !live.has(p.attemptId))
      .map((p): ProcessObservation => ({ pid: p.pid, startTicks: p.startTicks, exe: p.exe ?? "", ageSeconds: p.ageSeconds, attemptId: p.attemptId, inAgentCgroup: p.inAgentCgroup, uid: p.uid, seenCycles: 0 }))
    lastOrphans = new Map(orphans.map((o) => [o.pid, o]))
    const liveBeads = world.liveBeads()
    const sessions = await runtime.runPromise(Effect.flatMap(Terminals, (t) => t.list).pipe(Effect.orElseSucceed(() => [] as ReadonlyArray<string>)))
    const tmux = sessions
      .filter((name) => name.startsWith("agent-"))
      .map((session) => {
        const bead = session.slice("agent-".length).replace(/\+/g, ".")
        return { session, bead, live: liveBeads.has(bead) }
      })
    return {
      at: Date.now(),
      ...machineLoad(paths.root),
      services: world.services().map((s) => ({ name: s.name, state: s.state, restarts: s.restarts })),
      orphans,
      tmux,
      stalledSessions: world.stalled(),
      recentFailures: world.recentFailures()
    }
  }
  const act = async (decisions: ReadonlyArray<{ readonly action: unknown }>): Promise<ActOutput> => {
    const results: Array<{ index: number; ok: boolean; detail: string }> = []
    for (const [index, decision] of decisions.entries()) {
      const action = decision.action as { type: string; target: string | number; reason: string; message?: string }
      try {
        if (action.type === "restart_service") {
          world.restartService(String(action.target))
          results.push({ index, ok: true, detail: `restart sent to ${action.target}` })
        } else if (action.type === "kill_pid") {
          const pid = Number(action.target)
          const seen = lastOrphans.get(pid)
          const now = scanProcess(pid)
          // The same process as observed (pid and start time), still one of the agents' programs: only then.
          if (seen === undefined || now === null || now.startTicks !== seen.startTicks || now.exe !== seen.exe) {
            results.push({ index, ok: false, detail: `pid ${pid} is no longer the process observed: not signalled` })
            continue
          }
          process.kill(pid, "SIGKILL")
          results.push({ index, ok: true, detail: `killed pid ${pid} (${seen.exe})` })
        } else if (action.type === "kill_tmux") {
          await runtime.runPromise(Effect.flatMap(Terminals, (t) => t.kill(String(action.target))))
          results.push({ index, ok: true, detail: `ended tmux session ${action.target} on the agents' socket` })
        } else if (action.type === "alert") {
          world.log("argus alert", { problem: action.target, message: action.message })
          world.publish("argus.alert", { problem: action.target, message: action.message, reason: action.reason })
          world.alert(String(action.target), `warden argus: ${action.message ?? action.reason}`)
          results.push({ index, ok: true, detail: "alerted (the configured channels, the log and the feed)" })
        } else if (action.type === "log") {
          fs.mkdirSync(files.dir, { recursive: true })
          fs.appendFileSync(files.observations, `- ${new Date().toISOString()} ${action.target}: ${action.message}\n`)
          results.push({ index, ok: true, detail: `noted in ${files.observations}` })
        } else {
          results.push({ index, ok: false, detail: `not an allowed action: ${action.type}` })
        }
      } catch (error) {
        results.push({ index, ok: false, detail: error instanceof Error ? error.message : String(error) })
      }
    }
    return { results }
  }
  const audit = (cycle: ArgusCycle): void => {
    fs.mkdirSync(files.dir, { recursive: true })
    const lines = cycle.decisions.map((d, i) => {
      const action = d.action as { type?: unknown; target?: unknown }
      return JSON.stringify({
        at: new Date(cycle.at).toISOString(),
        action: action.type,
        target: action.target,
        source: d.source,
        verdict: d.verdict,
        reason: d.why,
        result: cycle.results?.find((r) => r.index === i) ?? null
      })
    })
    if (lines.length > 0) fs.appendFileSync(files.decisions, `${lines.join("\n")}\n`)
    world.publish("argus.cycle", summarizeCycle(cycle))
  }
  return argusMachine.provide({
    actors: {
      collect: fromPromise(() => collect()),
      decide: fromPromise(({ input }) => runtime.runPromise(decideWithAdvisor(input))),
      act: fromPromise(({ input }) => act(input.decisions)),
      audit: fromPromise(async ({ input }) => audit(input.cycle))
    }
  })
}

/** A cycle as `warden argus` and the feed show it: its observations' summary, and each decision with its verdict and why. */
export const summarizeCycle = (cycle: ArgusCycle) => ({
  at: new Date(cycle.at).toISOString(),
  decider: cycle.decider ?? "rules",
  ...(cycle.assessment === undefined ? {} : { assessment: cycle.assessment }),
  observations: {
    memory_used_percent: cycle.observations.memoryUsedPercent,
    disk_used_percent: cycle.observations.diskUsedPercent,
    load1: cycle.observations.load1,
    services: cycle.observations.services,
    orphans: cycle.observations.orphans.map((o) => ({ pid: o.pid, exe: o.exe, age_seconds: o.ageSeconds, seen_cycles: o.seenCycles, attempt_id: o.attemptId })),
    tmux: cycle.observations.tmux,
    stalled: cycle.observations.stalledSessions,
    recent_failures: cycle.observations.recentFailures
  },
  decisions: cycle.decisions.map((d) => {
    const action = d.action as { type?: unknown; target?: unknown }
    return { action: action.type, target: action.target, source: d.source, verdict: d.verdict, reason: d.why }
  })
})
