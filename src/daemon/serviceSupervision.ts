import type { AnyActorRef, InspectionEvent } from "xstate"
import { serviceSystemId } from "../../machines/supervisor.machine.js"
import type { ServiceConfig } from "../config/schema.js"
import { flattenState } from "../records/buildRecords.js"
import { UnknownService } from "./errors.js"

/** A supervised service as `warden services` and `GET /v1/services` show it. */
export interface ServiceView {
  readonly name: string
  readonly mode: "process" | "systemd"
  /** The service machine's state: starting, running.healthy, running.unhealthy, backingOff, restarting, stopping, stopped, failed. */
  readonly state: string
  readonly pid: number | null
  readonly restarts: number
  readonly last_exit: { readonly code: number | null; readonly signal: string | null; readonly at: string } | null
  readonly health: { readonly ok: boolean; readonly detail: string; readonly at: string } | null
  readonly since: string | null
}

interface ServiceContextLike {
  readonly pid?: number | null
  readonly restarts?: number
  readonly lastExit?: { code: number | null; signal: string | null; at: number } | null
  readonly health?: { ok: boolean; detail: string; at: number } | null
  readonly since?: number | null
  readonly failureReason?: string | null
}

const iso = (at: number | null | undefined) => (typeof at === "number" ? new Date(at).toISOString() : null)

/**
 * The services' side of the tree's observer: it spawns a child per configured
 * service (`service:<name>`), follows their snapshots for the feed (`services`
 * topic) and the log, hears their alerts, and carries the operator's verbs to
 * them.
 */
export class ServiceSupervision {
  private readonly refs = new Map<string, AnyActorRef>()
  private readonly states = new Map<string, string>()

  constructor(
    /** The root actor, once it exists (this observer is made before it, since the root's inspection calls it from its creation on). */
    private readonly rootOf: () => { send(event: { type: "SPAWN.SERVICE"; input: { name: string; [key: string]: unknown } }): void; system: { get(id: string): AnyActorRef | undefined } },
    private readonly services: Readonly<Record<string, ServiceConfig>>,
    private readonly policyOf: (name: string, config: ServiceConfig) => Record<string, unknown>,
    private readonly publish: (type: string, data: unknown) => void,
    private readonly log: (message: string, detail?: Record<string, unknown>) => void,
    private readonly alert: (name: string, reason: string) => void = () => undefined
  ) {}

  /** Every configured service becomes a child of the root. */
  spawnAll(): void {
    const root = this.rootOf()
    for (const [name, config] of Object.entries(this.services)) {
      root.send({ type: "SPAWN.SERVICE", input: { name, policy: this.policyOf(name, config) } })
      const ref = root.system.get(serviceSystemId(name))
      if (ref === undefined) continue
      this.refs.set(name, ref)
      ref.on("*", (emitted: { type: string; name?: string; reason?: string }) => {
        if (emitted.type !== "alert") return
        this.log("service alert", { service: name, reason: emitted.reason })
        this.publish("service.alert", { name, reason: emitted.reason ?? null })
        this.alert(name, emitted.reason ?? "failed")
      })
    }
  }

  /** A service child's snapshot: said on the feed and in the log when its state changes. */
  observe(inspection: InspectionEvent): void {
    if (inspection.type !== "@xstate.snapshot") return
    const systemId = (inspection.actorRef as { systemId?: string }).systemId
    if (systemId === undefined || !systemId.startsWith("service:")) return
    const name = systemId.slice("service:".length)
    const snapshot = inspection.snapshot as { value?: unknown; status?: string }
    if (snapshot.value === undefined) return
    const state = flattenState(snapshot.value)
    if (this.states.get(name) === state) return
    this.states.set(name, state)
    const view = this.view(name)
    if (view === null) return
    this.log("service state", { service: name, state, pid: view.pid, restarts: view.restarts })
    this.publish("service.state", view)
  }

  view(name: string): ServiceView | null {
    const config = this.services[name]
    const ref = this.refs.get(name)
    if (config === undefined || ref === undefined) return null
    const snapshot = ref.getSnapshot() as { value: unknown; context: ServiceContextLike }
    const c = snapshot.context ?? {}
    return {
      name,
      mode: config.mode,
      state: flattenState(snapshot.value),
      pid: c.pid ?? null,
      restarts: c.restarts ?? 0,
      last_exit: c.lastExit === null || c.lastExit === undefined ? null : { code: c.lastExit.code, signal: c.lastExit.signal, at: iso(c.lastExit.at)! },
      health: c.health === null || c.health === undefined ? null : { ok: c.health.ok, detail: c.health.detail, at: iso(c.health.at)! },
      since: iso(c.since)
    }
  }

  list(): ReadonlyArray<ServiceView> {
    return Object.keys(this.services)
      .sort()
      .flatMap((name) => {
        const view = this.view(name)
        return view === null ? [] : [view]
      })
  }

  /** Each service's current pid (null when none runs), for stopping them with the daemon. */
  running(): ReadonlyArray<{ readonly name: string; readonly pid: number | null }> {
    return [...this.refs].map(([name, ref]) => ({ name, pid: (ref.getSnapshot() as { context?: ServiceContextLike }).context?.pid ?? null }))
  }

  /** The operator's verb, carried to the service's actor: `restart` (not counted towards its limit), `stop`, `start`. */
  command(name: string, verb: "restart" | "stop" | "start"): ServiceView {
    const ref = this.refs.get(name)
    if (ref === undefined) throw new UnknownService({ name, configured: Object.keys(this.services) })
    ref.send({ type: verb.toUpperCase(), at: Date.now() })
    this.log("service command", { service: name, verb })
    return this.view(name)!
  }
}
