import { useEffect, useState } from "preact/hooks"
import { ApiError, getJson, messageOf } from "./api.js"
import { FeedConnection } from "./feed.js"
import { type ArgusCycle, FINAL_STATES, type FeedMessage, type QueueItem, type RunRecord, type ServiceView } from "./types.js"

/** A row of the sessions view: a run record when there is one, else what the feed and the queue said. */
export interface SessionRow {
  readonly bead: string
  readonly profile: string
  readonly state: string
  readonly attempt: number | null
  readonly startedAt: number | null
  readonly finishedAt: number | null
  readonly completionSource: string | null
  readonly result: string | null
  readonly priority: number | null
  readonly record: RunRecord | null
}

/** The latest state of one actor on the machines' stream, with the states it went through. */
export interface MachineMarks {
  readonly current: ReadonlyArray<string>
  readonly visited: ReadonlySet<string>
  readonly at: number
}

export interface DashboardState {
  sessions: Map<string, SessionRow>
  draining: boolean
  services: ReadonlyArray<ServiceView>
  argus: { enabled: boolean; cycles: ReadonlyArray<ArgusCycle> }
  machines: Map<string, MachineMarks>
  live: { feed: boolean; machines: boolean }
  /** The session rows have been asked for once (answered or refused): a bead without a row is then one the daemon does not list. */
  listed: boolean
  /** The errors of the view on screen (cleared on navigation: an error belongs to the view that caused it). */
  errors: ReadonlyArray<string>
}

const state: DashboardState = {
  sessions: new Map(),
  draining: false,
  services: [],
  argus: { enabled: false, cycles: [] },
  machines: new Map(),
  live: { feed: false, machines: false },
  listed: false,
  errors: []
}

const listeners = new Set<() => void>()
const changed = () => {
  for (const listener of listeners) listener()
}

/** The whole state, re-rendering the component at each change (the page is small: one store, no selectors). */
export const useDashboard = (): DashboardState => {
  const [, setVersion] = useState(0)
  useEffect(() => {
    const listener = () => setVersion((v) => v + 1)
    listeners.add(listener)
    return () => void listeners.delete(listener)
  }, [])
  return state
}

export const onChange = (listener: () => void): (() => void) => {
  listeners.add(listener)
  return () => void listeners.delete(listener)
}

const time = (iso: string | null | undefined): number | null => (iso ? Date.parse(iso) : null)

const rowOfRecord = (record: RunRecord): SessionRow => ({
  bead: record.bead,
  profile: record.profile,
  state: record.lifecycle_state,
  attempt: record.attempt,
  startedAt: time(record.started_at_precise),
  finishedAt: time(record.finished_at_precise),
  completionSource: record.completion?.source ?? null,
  result: record.outcome ?? (record.status === "running" ? null : record.status),
  priority: null,
  record
})

const rowOfQueued = (item: QueueItem): SessionRow => ({
  bead: item.bead,
  profile: item.profile,
  state: "queued",
  attempt: null,
  startedAt: null,
  finishedAt: null,
  completionSource: null,
  result: null,
  priority: item.priority,
  record: null
})

/**
 * Notes an error for the banner. `view` is the address the request was made
 * from: an answer that comes back after the operator left that view is not
 * shown on the next one. Background loads (`null`) show on the current view.
 */
const noteError = (what: string, error: unknown, view: string | null = null) => {
  if (view !== null && view !== location.hash) return
  state.errors = [...state.errors.slice(-4), `${what}: ${messageOf(error)}`]
  changed()
}

const clearErrors = () => {
  if (state.errors.length === 0) return
  state.errors = []
  changed()
}

/** Everything the views list, fetched once (at load, and after a feed `gap` or `reset`). */
export const loadAll = async (): Promise<void> => {
  await Promise.all([
    Promise.all([getJson<{ sessions: RunRecord[] }>("/v1/sessions"), getJson<{ queue: QueueItem[] }>("/v1/queue")]).then(([sessions, queue]) => {
      const rows = new Map<string, SessionRow>()
      for (const item of queue.queue) rows.set(item.bead, rowOfQueued(item))
      for (const record of sessions.sessions) if (!record.unreadable) rows.set(record.bead, { ...rowOfRecord(record), priority: rows.get(record.bead)?.priority ?? null })
      state.sessions = rows
    }, (error) => noteError("sessions", error)).finally(() => void (state.listed = true)),
    getJson<{ draining: boolean }>("/healthz").then((health) => void (state.draining = health.draining), (error) => noteError("health", error)),
    getJson<{ services: ServiceView[] }>("/v1/services").then((answer) => void (state.services = answer.services), (error) => noteError("services", error)),
    getJson<{ enabled: boolean; cycles: ArgusCycle[] }>("/v1/argus").then((answer) => void (state.argus = { enabled: answer.enabled, cycles: answer.cycles }), (error) => noteError("argus", error))
  ])
  changed()
}

/**
 * One bead's row again, from its record (after `records.written`, or when its
 * view opens). `missing` when the daemon has no record of it (404, left to the
 * caller to say); any other refusal is noted for the banner, and answers null.
 */
export const refreshSession = async (bead: string): Promise<RunRecord | "missing" | null> => {
  const view = location.hash
  try {
    const answer = await getJson<{ run: RunRecord }>(`/v1/sessions/${encodeURIComponent(bead)}`)
    const before = state.sessions.get(bead)
    state.sessions.set(bead, { ...rowOfRecord(answer.run), priority: before?.priority ?? null })
    changed()
    return answer.run
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return "missing"
    noteError(bead, error, view)
    return null
  }
}

/** The ids of the active states of an XState value, as the SVG's `data-state` names them (`agentSession.running.working`). */
export const stateIds = (machine: string, value: unknown): string[] => {
  const ids: string[] = []
  const walk = (prefix: string, v: unknown) => {
    if (typeof v === "string") ids.push(`${prefix}.${v}`)
    else if (typeof v === "object" && v !== null)
      for (const [key, inner] of Object.entries(v as Record<string, unknown>)) {
        ids.push(`${prefix}.${key}`)
        walk(`${prefix}.${key}`, inner)
      }
  }
  walk(machine, value)
  return ids
}

/** A short name of an XState value: `running.working`. */
export const valueName = (value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "object" && value !== null) return Object.entries(value as Record<string, unknown>).map(([key, inner]) => `${key}.${valueName(inner)}`).join(",")
  return String(value)
}

const applyEvent = (message: FeedMessage) => {
  const data = message.data ?? {}
  switch (message.type) {
    case "session.state": {
      const before = state.sessions.get(data.bead)
      state.sessions.set(data.bead, {
        bead: data.bead,
        profile: data.profile ?? before?.profile ?? "",
        state: data.state,
        attempt: data.attempt ?? before?.attempt ?? null,
        startedAt: before?.startedAt ?? Date.now(),
        finishedAt: before?.finishedAt ?? (FINAL_STATES.has(String(data.state).split(".")[0]!) ? Date.now() : null),
        completionSource: data.decision?.source ?? before?.completionSource ?? null,
        result: data.outcome ?? null,
        priority: before?.priority ?? null,
        record: before?.record ?? null
      })
      break
    }
    case "records.written":
      void refreshSession(data.bead)
      return
    case "queue.enqueued":
      if (!state.sessions.has(data.bead) || state.sessions.get(data.bead)!.result !== null) state.sessions.set(data.bead, rowOfQueued(data as QueueItem))
      break
    case "queue.removed": {
      const row = state.sessions.get(data.bead)
      if (row !== undefined && row.state === "queued" && row.record === null) state.sessions.delete(data.bead)
      break
    }
    case "daemon.draining":
      state.draining = true
      break
    case "daemon.admitting":
      state.draining = false
      break
    case "service.state": {
      const view = data as ServiceView
      const others = state.services.filter((s) => s.name !== view.name)
      state.services = [...others, view].sort((a, b) => a.name.localeCompare(b.name))
      break
    }
    case "argus.cycle":
      state.argus = { enabled: true, cycles: [data as ArgusCycle, ...state.argus.cycles].slice(0, 50) }
      break
    case "machine.state": {
      const actor = String(data.actor ?? "")
      if (!actor.startsWith("session:")) return
      const before = state.machines.get(actor)
      const current = stateIds("agentSession", data.value)
      const visited = new Set(before?.visited ?? [])
      for (const id of before?.current ?? []) visited.add(id)
      for (const id of current) visited.delete(id)
      state.machines.set(actor, { current, visited, at: typeof data.at === "number" ? data.at : Date.now() })
      break
    }
    default:
      return
  }
  changed()
}

let started = false

/** Loads once, then follows the feed (the operators' topics) and the machines' stream, live. */
export const startDashboard = (): void => {
  if (started) return
  started = true
  const status = (which: "feed" | "machines") => (live: boolean) => {
    state.live = { ...state.live, [which]: live }
    changed()
  }
  addEventListener("hashchange", clearErrors)
  void loadAll()
  new FeedConnection("sessions,records,queue,daemon,services,argus", { onEvent: applyEvent, onResync: () => void loadAll(), onStatus: status("feed") }).open()
  new FeedConnection("machines", { onEvent: applyEvent, onResync: () => undefined, onStatus: status("machines") }).open()
}
