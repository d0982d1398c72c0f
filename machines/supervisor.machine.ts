/**
 * The daemon's root supervisor: the root of the actor tree. It owns a child
 * session actor per dispatched bead (`systemId` `session:<bead>`), spawned on
 * SPAWN (new, or restored from the bead's own snapshot), and decides when a
 * queued one may start. The queue itself sits behind the `claimNext` actor
 * (the WorkQueue service: a file today, a database later); this machine owns
 * the slots: a global concurrency limit, a quota per agent profile, and
 * admission only while the machine has memory headroom. An admission is sent
 * to the bead's child as ADMIT and emitted as `admit` for observers.
 *
 * A session holds its slot while its state carries the `holdsSlot` tag; the
 * root's observer (which sees every child's snapshot) reports the tag's coming
 * and going as ADOPTED and RELEASED. Services and Argus will be children of
 * this root too.
 *
 * Pure: no I/O, no imports from `src/`.
 */
import { assertEvent, assign, emit, enqueueActions, fromPromise, setup, type AnyActorLogic, type AnyActorRef } from "xstate"
import type { SessionPolicy } from "./agentSession.types.js"
import { notProvided } from "./actorPlaceholder.js"

/** A bead the queue hands out. */
export interface AdmittedItem {
  readonly bead: string
  readonly profile: string
  readonly priority: number
  readonly retry: boolean
  /** When the claim was made: the session's ADMIT carries it (machines read time from events). */
  readonly at?: number
}

/** A session child's input: its bead and policy, and its persisted snapshot when it is restored. */
export interface SessionChildInput {
  readonly bead: string
  readonly policy: SessionPolicy
  readonly snapshot?: unknown
}

/** The system id of a bead's session actor: `system.get(sessionSystemId(bead))` finds it while it is not over. */
export const sessionSystemId = (bead: string): string => `session:${bead}`

/** A supervised service's input (opaque here: the service machine's own input). */
export interface ServiceChildInput {
  readonly name: string
  readonly [key: string]: unknown
}

/** The system id of a supervised service's actor. */
export const serviceSystemId = (name: string): string => `service:${name}`

export interface SupervisorLimits {
  /** Sessions that may hold a slot at once (the seed's figure is 10). */
  readonly concurrency: number
  /** The most slots one agent profile may hold; a profile not listed is limited only by `concurrency`. */
  readonly quotas: Readonly<Record<string, number>>
  /** No admission while the machine's available memory is below this. */
  readonly minFreeMemoryMb: number
}

export interface SupervisorContext {
  readonly limits: SupervisorLimits
  /** The beads holding a slot, with their profile. */
  readonly running: ReadonlyArray<{ readonly bead: string; readonly profile: string }>
  readonly freeMemoryMb: number | null
  /** Set when something may be waiting in the queue; cleared when a claim finds nothing admissible. */
  readonly mayHaveWork: boolean
  /** Counts wake-ups, so a wake-up during a claim that found nothing is not lost. */
  readonly wakes: number
  readonly wakesAtClaim: number
  /** A draining daemon admits nothing new (maintenance). */
  readonly draining: boolean
  /** The beads with a live session child, with the child's id (unique per spawn, so an old child's end never stops a new one). */
  readonly sessions: Readonly<Record<string, string>>
  /** Children spawned so far: the next child's id is `session:<bead>#<spawned>`. */
  readonly spawned: number
  /** The supervised services with a child, by name (a service child lives as long as the daemon). */
  readonly services: ReadonlyArray<string>
}

/** A bead that went into the queue, as the feed reports it. */
export interface QueuedItem {
  readonly bead: string
  readonly profile: string
  readonly priority: number
  readonly seq: number
  readonly retry: boolean
}

export type SupervisorEvent =
  /** Something went into the queue (`item` says what, for observers). */
  | { readonly type: "ENQUEUED"; readonly item?: QueuedItem }
  /** A bead was taken out of the queue before it was admitted (cancelled while it waited). */
  | { readonly type: "DEQUEUED"; readonly bead: string }
  | { readonly type: "RELEASED"; readonly bead: string }
  | { readonly type: "ADOPTED"; readonly bead: string; readonly profile: string }
  | { readonly type: "MEMORY"; readonly freeMb: number }
  | { readonly type: "DRAIN"; readonly on: boolean }
  /** Every restored session has been adopted (or queued): admitting may begin. */
  | { readonly type: "START"; readonly restored?: ReadonlyArray<string> }
  /** Start supervising a bead's session (new, or restored from `input.snapshot`). Ignored while the bead has a live child. */
  | { readonly type: "SPAWN"; readonly input: SessionChildInput }
  /** The session `id` is over and its records are on disk: the child is let go. */
  | { readonly type: "SESSION.OVER"; readonly bead: string; readonly id: string }
  /** Start supervising a configured service (once per name for the daemon's life). */
  | { readonly type: "SPAWN.SERVICE"; readonly input: ServiceChildInput }
  /** Start Argus, the watchdog (once for the daemon's life; `systemId` `argus`). */
  | { readonly type: "SPAWN.ARGUS"; readonly input: Readonly<Record<string, unknown>> }

export type SupervisorEmitted =
  | { readonly type: "admit"; readonly item: AdmittedItem }
  /** A SPAWN for a bead that already has a live child was refused (a second child would stop the tree). */
  | { readonly type: "spawnRefused"; readonly bead: string }
  /** A session child failed (an exception in its machine): the root lets it go and frees its slot. */
  | { readonly type: "sessionFailed"; readonly bead: string; readonly id: string; readonly error: unknown }
  /** A service child failed (an exception in its machine): it is no longer supervised until the daemon restarts. */
  | { readonly type: "serviceFailed"; readonly name: string; readonly error: unknown }

const beadOfChild = (context: SupervisorContext, id: string): string | undefined =>
  Object.keys(context.sessions).find((bead) => context.sessions[bead] === id)

const hasSlot = (context: SupervisorContext) =>
  !context.draining &&
  context.running.length < context.limits.concurrency &&
  (context.freeMemoryMb === null || context.freeMemoryMb >= context.limits.minFreeMemoryMb)

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as { limits: SupervisorLimits; draining?: boolean },
    emitted: {} as SupervisorEmitted
  },
  actors: {
    /** Takes the most urgent admissible item from the queue; `blocked` lists the profiles at their quota. */
    claimNext: fromPromise<AdmittedItem | null, { blocked: ReadonlyArray<string> }>(notProvided("supervisor", "claimNext")),
    /** A bead's session (the lifecycle machine with its effects), provided by the daemon; its input is a `SessionChildInput`. */
    session: fromPromise<unknown, SessionChildInput>(notProvided("supervisor", "session")) as AnyActorLogic,
    /** A supervised service (the service machine with its effects), provided by the daemon. */
    service: fromPromise<unknown, ServiceChildInput>(notProvided("supervisor", "service")) as AnyActorLogic,
    /** Argus, the watchdog (its machine with allowlisted effects), provided by the daemon. */
    argus: fromPromise<unknown, Readonly<Record<string, unknown>>>(notProvided("supervisor", "argus")) as AnyActorLogic
  },
  guards: {
    canAdmit: ({ context }) => context.mayHaveWork && hasSlot(context),
    claimed: ({ event }) => (event as unknown as { output: AdmittedItem | null }).output !== null
  },
  actions: {
    wake: assign(({ context }) => ({ mayHaveWork: true, wakes: context.wakes + 1 })),
    release: assign(({ context, event }) =>
      event.type === "RELEASED"
        ? { running: context.running.filter((r) => r.bead !== event.bead), mayHaveWork: true, wakes: context.wakes + 1 }
        : {}
    ),
    adopt: assign(({ context, event }) =>
      event.type === "ADOPTED" && !context.running.some((r) => r.bead === event.bead)
        ? { running: [...context.running, { bead: event.bead, profile: event.profile }] }
        : {}
    ),
    /** A reading wakes the supervisor only when it gives headroom back: otherwise nothing it could admit has changed. */
    noteMemory: assign(({ context, event }) => {
      assertEvent(event, "MEMORY")
      const short = (freeMb: number | null) => freeMb !== null && freeMb < context.limits.minFreeMemoryMb
      return short(context.freeMemoryMb) && !short(event.freeMb)
        ? { freeMemoryMb: event.freeMb, mayHaveWork: true, wakes: context.wakes + 1 }
        : { freeMemoryMb: event.freeMb }
    }),
    setDraining: assign(({ context, event }) =>
      event.type === "DRAIN" ? { draining: event.on, mayHaveWork: true, wakes: context.wakes + 1 } : {}
    ),
    markClaim: assign(({ context }) => ({ wakesAtClaim: context.wakes })),
    takeSlot: assign(({ context, event }) => {
      const item = (event as unknown as { output: AdmittedItem }).output
      return { running: [...context.running, { bead: item.bead, profile: item.profile }] }
    }),
    announce: emit(({ event }) => ({ type: "admit" as const, item: (event as unknown as { output: AdmittedItem }).output })),
    /**
     * The admitted bead's session is told to start. A bead whose child is gone or no longer queued
     * (cancelled while it waited) gives the slot back at once. A bead with no child at all was never
     * spawned here (admission handled by whoever listens to `admit`): its slot stays taken.
     */
    admitChild: enqueueActions(({ context, event, enqueue, system }) => {
      const item = (event as unknown as { output: AdmittedItem }).output
      if (!(item.bead in context.sessions)) return
      const child: AnyActorRef | undefined = system.get(sessionSystemId(item.bead))
      if (child !== undefined && (child.getSnapshot() as { value: unknown }).value === "queued") {
        enqueue.sendTo(child, { type: "ADMIT", at: item.at ?? 0 })
        return
      }
      enqueue.assign({ running: context.running.filter((r) => r.bead !== item.bead) })
    }),
    spawnSession: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, "SPAWN")
      const bead = event.input.bead
      if (bead in context.sessions) {
        enqueue.emit({ type: "spawnRefused", bead })
        return
      }
      const id = `${sessionSystemId(bead)}#${context.spawned + 1}`
      enqueue.spawnChild("session", { id, systemId: sessionSystemId(bead), input: event.input })
      enqueue.assign({ sessions: { ...context.sessions, [bead]: id }, spawned: context.spawned + 1 })
    }),
    spawnService: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, "SPAWN.SERVICE")
      const name = event.input.name
      if (context.services.includes(name)) return
      enqueue.spawnChild("service", { id: serviceSystemId(name), systemId: serviceSystemId(name), input: event.input })
      enqueue.assign({ services: [...context.services, name] })
    }),
    spawnArgus: enqueueActions(({ event, enqueue, system }) => {
      assertEvent(event, "SPAWN.ARGUS")
      if (system.get("argus") !== undefined) return
      enqueue.spawnChild("argus", { id: "argus", systemId: "argus", input: event.input })
    }),
    letGo: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, "SESSION.OVER")
      if (context.sessions[event.bead] !== event.id) return
      enqueue.stopChild(event.id)
      const { [event.bead]: _over, ...sessions } = context.sessions
      enqueue.assign({ sessions, running: context.running.filter((r) => r.bead !== event.bead), mayHaveWork: true, wakes: context.wakes + 1 })
    }),
    childFailed: enqueueActions(({ context, event, enqueue }) => {
      const id = event.type.slice("xstate.error.actor.".length)
      const bead = beadOfChild(context, id)
      if (bead === undefined) {
        const service = context.services.find((name) => serviceSystemId(name) === id)
        if (service !== undefined) {
          enqueue.emit({ type: "serviceFailed", name: service, error: (event as unknown as { error: unknown }).error })
          enqueue.assign({ services: context.services.filter((name) => name !== service) })
        }
        return
      }
      enqueue.emit({ type: "sessionFailed", bead, id, error: (event as unknown as { error: unknown }).error })
      const { [bead]: _failed, ...sessions } = context.sessions
      enqueue.assign({ sessions, running: context.running.filter((r) => r.bead !== bead), mayHaveWork: true, wakes: context.wakes + 1 })
    }),
    nothingAdmissible: assign(({ context }) => ({ mayHaveWork: context.wakes !== context.wakesAtClaim }))
  }
}).createMachine({
  id: "supervisor",
  context: ({ input }) => ({
    limits: input.limits,
    running: [],
    freeMemoryMb: null,
    mayHaveWork: true,
    wakes: 0,
    wakesAtClaim: 0,
    draining: input.draining ?? false,
    sessions: {},
    spawned: 0,
    services: []
  }),
  on: {
    SPAWN: { actions: "spawnSession" },
    "SESSION.OVER": { actions: "letGo" },
    "SPAWN.SERVICE": { actions: "spawnService" },
    "SPAWN.ARGUS": { actions: "spawnArgus" },
    // A child's exception reaches the root only as this event; unhandled, it would stop the whole tree.
    "xstate.error.actor.*": { actions: "childFailed" },
    ENQUEUED: { actions: "wake" },
    RELEASED: { actions: "release" },
    ADOPTED: { actions: "adopt" },
    MEMORY: { actions: "noteMemory" },
    DRAIN: { actions: "setDraining" }
  },
  initial: "starting",
  states: {
    /**
     * Restoring: the sessions a restart takes over are reported (ADOPTED, ENQUEUED) before any slot is
     * given, so a restored running session holds its slot before a queued bead can be admitted into it.
     */
    starting: {
      on: { START: "idle" }
    },
    /** Waiting for work or a free slot. */
    idle: {
      always: { guard: "canAdmit", target: "claiming" }
    },
    /** Asking the queue for the next admissible bead (its profile under quota). */
    claiming: {
      entry: "markClaim",
      invoke: {
        src: "claimNext",
        input: ({ context }) => ({
          blocked: Object.entries(context.limits.quotas)
            .filter(([profile, quota]) => context.running.filter((r) => r.profile === profile).length >= quota)
            .map(([profile]) => profile)
        }),
        onDone: [
          { guard: "claimed", target: "idle", actions: ["takeSlot", "announce", "admitChild"] },
          { target: "idle", actions: "nothingAdmissible" }
        ],
        // The queue could not be read: wait for the next event rather than spin.
        onError: { target: "idle", actions: "nothingAdmissible" }
      }
    }
  }
})

export type SupervisorMachine = typeof supervisorMachine
