/**
 * Argus, the watchdog (a child of the root supervisor, systemId `argus`): a cycle on an interval and on
 * important events (`CYCLE`), that remembers across cycles what it saw, did and refused.
 *
 *   idle ──after intervalMs, or CYCLE──▶ collecting ──▶ deciding ──▶ validating ──▶ acting ──▶ auditing ──▶ idle
 *
 * - `collecting`: the `collect` actor observes the machine (services, memory/disk/load, orphan agent
 *   processes, agent tmux sessions, stalled sessions, recent failures); each orphan's `seenCycles` is
 *   then counted from memory.
 * - `deciding`: the `decide` actor (the rules, or an LLM with the rules as fallback) answers a list of
 *   proposed actions: untrusted data. What of an LLM's answer was refused whole (not JSON, past the cap of
 *   proposals) comes along as `rejected` and is audited as refusals.
 * - `validating`: pure and transient; `validate` (the allowlist) turns every proposal into a Decision, and
 *   memory is updated (sightings, restarts, alerts or dry-run ones, refusals).
 * - `acting`: the `act` actor, the ONLY effect, receives the decisions `validate` accepted with verdict
 *   `done` (none in dry-run), each one of the five action types. Skipped when there are none.
 * - `auditing`: the `audit` actor writes the cycle (every decision, carried out or refused, and why).
 *
 * A `CYCLE` during a cycle is absorbed by it. A failing actor never stops Argus: a failed collection ends
 * the cycle, a failed decider proposes nothing, a failed act or audit is noted in `lastError`.
 * Pure: imports only xstate and Argus's own pure modules; the actors are provided by the daemon.
 */
import { assign, fromPromise, setup } from "xstate"
import { countSightings, isAccepted, rememberCycle, validate } from "./argus.rules.js"
import {
  emptyMemory,
  type AcceptedDecision,
  type ArgusMemory,
  type ArgusPolicy,
  type Decision,
  type Observations
} from "./argus.types.js"
import { notProvided } from "./actorPlaceholder.js"

export interface ArgusInput {
  readonly policy: ArgusPolicy
  /** Memory from a previous run, if any. */
  readonly memory?: ArgusMemory
}

export interface DecideInput {
  readonly observations: Observations
  readonly policy: ArgusPolicy
  readonly memory: ArgusMemory
}
/** `actions` is untrusted (an LLM's answer may be anything): only `validate` reads it. */
export interface DecideOutput {
  readonly actions: unknown
  readonly source: "rules" | "llm"
  /** How the decision was come to, in words: the LLM answered, was not asked (all normal), or failed and the rules decided. */
  readonly decider?: string
  /** The LLM's own assessment (bounded text), kept for the audit; never acted on. */
  readonly assessment?: string
  /** What of the LLM's answer was refused whole (not JSON, no list of actions, actions past the cap it may propose): audited as refusals. */
  readonly rejected?: ReadonlyArray<string>
}
export interface ActInput {
  /** Only decisions `validate` accepted with verdict `done`. */
  readonly decisions: ReadonlyArray<AcceptedDecision & { readonly verdict: "done" }>
}
export interface ActOutput {
  /** Per decision of the input (`index` into it): carried out or not, and what happened. */
  readonly results: ReadonlyArray<{ readonly index: number; readonly ok: boolean; readonly detail: string }>
}
export interface ArgusCycle {
  readonly at: number
  readonly observations: Observations
  readonly decisions: ReadonlyArray<Decision>
  readonly results?: ActOutput["results"]
  /** The decider's account of itself (`DecideOutput.decider`). */
  readonly decider?: string
  readonly assessment?: string
}
export interface AuditInput {
  readonly cycle: ArgusCycle
}

export type ArgusEvent = { readonly type: "CYCLE"; readonly at: number }

export interface ArgusContext {
  readonly policy: ArgusPolicy
  readonly memory: ArgusMemory
  readonly lastObservations: Observations | null
  readonly lastDecisions: ReadonlyArray<Decision>
  readonly lastResults: ActOutput["results"] | null
  /** The last cycles (at most `MAX_CYCLES`), newest last. */
  readonly cycles: ReadonlyArray<ArgusCycle>
  readonly lastError: string | null
  /** The decider's answer between `deciding` and `validating` (untrusted; dropped once validated). */
  readonly proposal: DecideOutput | null
  /** The cycle's decider's account and assessment, kept with the cycle. */
  readonly lastDecider: Pick<DecideOutput, "decider" | "assessment"> | null
}

export const MAX_CYCLES = 20


const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The decisions `act` may receive: accepted with verdict `done`. */
const toAct = (decisions: ReadonlyArray<Decision>): ActInput["decisions"] =>
  decisions.filter((decision): decision is AcceptedDecision & { verdict: "done" } => isAccepted(decision) && decision.verdict === "done")

const currentCycle = (context: ArgusContext): ArgusCycle => ({
  at: context.lastObservations!.at,
  observations: context.lastObservations!,
  decisions: context.lastDecisions,
  ...(context.lastResults === null ? {} : { results: context.lastResults }),
  ...(context.lastDecider?.decider === undefined ? {} : { decider: context.lastDecider.decider }),
  ...(context.lastDecider?.assessment === undefined ? {} : { assessment: context.lastDecider.assessment })
})

/** What of an answer was refused whole, as refusals of the allowlist (nothing in them is ever acted on). */
const rejectedWhole = (proposal: DecideOutput | null): Decision[] =>
  (Array.isArray(proposal?.rejected) ? proposal.rejected : []).map((why) => ({ action: { type: "(answer)" }, source: "llm", verdict: "refused", why: String(why) }))

export const argusMachine = setup({
  types: {
    context: {} as ArgusContext,
    events: {} as ArgusEvent,
    input: {} as ArgusInput
  },
  actors: {
    collect: fromPromise<Observations, void>(notProvided("argus", "collect")),
    decide: fromPromise<DecideOutput, DecideInput>(notProvided("argus", "decide")),
    act: fromPromise<ActOutput, ActInput>(notProvided("argus", "act")),
    audit: fromPromise<void, AuditInput>(notProvided("argus", "audit"))
  },
  delays: {
    interval: ({ context }) => context.policy.intervalMs
  },
  guards: {
    somethingToDo: ({ context }) => toAct(context.lastDecisions).length > 0
  },
  actions: {
    beginCycle: assign({ lastResults: () => null, lastError: () => null, lastDecider: () => null }),
    observe: assign({
      lastObservations: ({ context }, params: { observations: Observations }) => countSightings(params.observations, context.memory),
      lastDecisions: () => []
    }),
    noteError: assign({ lastError: (_, params: { error: unknown }) => describe(params.error) }),
    /** The allowlist: every proposal, whatever its source, becomes a Decision; then memory learns the cycle. */
    holdProposal: assign({ proposal: (_, params: { output: DecideOutput | null }) => params.output }),
    validateProposals: assign(({ context }) => {
      const observations = context.lastObservations!
      const proposals = context.proposal === null ? [] : context.proposal.actions
      const source = context.proposal?.source === "llm" ? "llm" : "rules"
      const decisions: Decision[] = [
        ...rejectedWhole(context.proposal),
        ...(Array.isArray(proposals)
          ? validate(proposals, observations, context.policy, context.memory, observations.at, source)
          : [{ action: { type: "(answer)" }, source, verdict: "refused", why: "the decider's answer is not a list of actions" } satisfies Decision])
      ]
      const lastDecider =
        context.proposal === null ? null : { decider: context.proposal.decider, assessment: context.proposal.assessment }
      return { lastDecisions: decisions, memory: rememberCycle(context.memory, observations, decisions, observations.at), proposal: null, lastDecider }
    }),
    recordResults: assign({ lastResults: (_, params: { output: ActOutput }) => params.output.results }),
    keepCycle: assign({ cycles: ({ context }) => [...context.cycles, currentCycle(context)].slice(-MAX_CYCLES) })
  }
}).createMachine({
  id: "argus",
  context: ({ input }) => ({
    policy: input.policy,
    memory: input.memory ?? emptyMemory,
    lastObservations: null,
    lastDecisions: [],
    lastResults: null,
    cycles: [],
    lastError: null,
    proposal: null,
    lastDecider: null
  }),
  initial: "idle",
  states: {
    /** Waiting for the next cycle: the interval, or an important event. */
    idle: {
      after: { interval: { target: "collecting" } },
      on: { CYCLE: { target: "collecting" } }
    },
    /** Observing the machine. */
    collecting: {
      entry: "beginCycle",
      invoke: {
        src: "collect",
        onDone: { target: "deciding", actions: [{ type: "observe", params: ({ event }) => ({ observations: event.output }) }] },
        onError: { target: "idle", actions: [{ type: "noteError", params: ({ event }) => ({ error: event.error }) }] }
      }
    },
    /** Asking the decider (rules or LLM) what to do: its answer is only advice. */
    deciding: {
      invoke: {
        src: "decide",
        input: ({ context }) => ({ observations: context.lastObservations!, policy: context.policy, memory: context.memory }),
        onDone: { target: "validating", actions: [{ type: "holdProposal", params: ({ event }) => ({ output: event.output }) }] },
        onError: {
          target: "validating",
          actions: [
            { type: "noteError", params: ({ event }) => ({ error: event.error }) },
            { type: "holdProposal", params: { output: null } }
          ]
        }
      }
    },
    /** The allowlist judges every proposal (pure); acting only when some decisions are to be carried out. */
    validating: {
      entry: "validateProposals",
      always: [{ guard: "somethingToDo", target: "acting" }, { target: "auditing" }]
    },
    /** Carrying out the accepted decisions: the only effect. */
    acting: {
      invoke: {
        src: "act",
        input: ({ context }) => ({ decisions: toAct(context.lastDecisions) }),
        onDone: { target: "auditing", actions: [{ type: "recordResults", params: ({ event }) => ({ output: event.output }) }] },
        onError: { target: "auditing", actions: [{ type: "noteError", params: ({ event }) => ({ error: event.error }) }] }
      }
    },
    /** Writing every decision, carried out or refused, and why. */
    auditing: {
      entry: "keepCycle",
      invoke: {
        src: "audit",
        input: ({ context }) => ({ cycle: context.cycles[context.cycles.length - 1]! }),
        onDone: { target: "idle" },
        onError: { target: "idle", actions: [{ type: "noteError", params: ({ event }) => ({ error: event.error }) }] }
      }
    }
  }
})
