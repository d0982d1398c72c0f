/**
 * The daemon's root supervisor: it decides when a queued bead may start.
 * The queue itself sits behind the `claimNext` actor (the WorkQueue service:
 * a file today, a database later); this machine owns the slots: a global
 * concurrency limit, a quota per agent profile, and admission only while the
 * machine has memory headroom. Each admission is emitted as an `admit` event
 * for the daemon, which starts (or resumes) the bead's session actor.
 *
 * Pure: no I/O, no imports from `src/`.
 */
import { assign, emit, fromPromise, setup } from "xstate"

/** A bead the queue hands out. */
export interface AdmittedItem {
  readonly bead: string
  readonly profile: string
  readonly priority: number
  readonly retry: boolean
}

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
}

export type SupervisorEvent =
  | { readonly type: "ENQUEUED" }
  | { readonly type: "RELEASED"; readonly bead: string }
  | { readonly type: "ADOPTED"; readonly bead: string; readonly profile: string }
  | { readonly type: "MEMORY"; readonly freeMb: number }
  | { readonly type: "DRAIN"; readonly on: boolean }
  /** Every restored session has been adopted (or queued): admitting may begin. */
  | { readonly type: "START" }

export type SupervisorEmitted = { readonly type: "admit"; readonly item: AdmittedItem }

const notProvided = () => {
  throw new Error('supervisor: actor "claimNext" is not provided; use machine.provide()')
}

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
    claimNext: fromPromise<AdmittedItem | null, { blocked: ReadonlyArray<string> }>(notProvided)
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
    noteMemory: assign(({ context, event }) =>
      event.type === "MEMORY" ? { freeMemoryMb: event.freeMb, mayHaveWork: true, wakes: context.wakes + 1 } : {}
    ),
    setDraining: assign(({ context, event }) =>
      event.type === "DRAIN" ? { draining: event.on, mayHaveWork: true, wakes: context.wakes + 1 } : {}
    ),
    markClaim: assign(({ context }) => ({ wakesAtClaim: context.wakes })),
    takeSlot: assign(({ context, event }) => {
      const item = (event as unknown as { output: AdmittedItem }).output
      return { running: [...context.running, { bead: item.bead, profile: item.profile }] }
    }),
    announce: emit(({ event }) => ({ type: "admit" as const, item: (event as unknown as { output: AdmittedItem }).output })),
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
    draining: input.draining ?? false
  }),
  on: {
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
          { guard: "claimed", target: "idle", actions: ["takeSlot", "announce"] },
          { target: "idle", actions: "nothingAdmissible" }
        ],
        // The queue could not be read: wait for the next event rather than spin.
        onError: { target: "idle", actions: "nothingAdmissible" }
      }
    }
  }
})

export type SupervisorMachine = typeof supervisorMachine
