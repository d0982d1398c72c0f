import type { AnyStateMachine, AnyStateNode } from "xstate"
import { toDirectedGraph, type DirectedGraphNode } from "xstate/graph"

/** A state's kind, as XState names it. */
export type StateKind = "atomic" | "compound" | "parallel" | "final" | "history"

/** One state of a machine: `id` is XState's state id (`agentSession.running.working`), `parent` its parent's id (null for the machine). */
export interface VizNode {
  readonly id: string
  readonly label: string
  readonly parent: string | null
  readonly kind: StateKind
  /** The state its parent enters first. */
  readonly initial: boolean
  /** Nesting depth: 0 for the machine itself. */
  readonly depth: number
}

/** One transition: `event` is XState's event type (`xstate.after.stallTime...`, `always` for an eventless one); `label` reads `event [guard]`. */
export interface VizEdge {
  readonly id: string
  readonly source: string
  readonly target: string
  readonly event: string
  readonly guard: string | null
  readonly label: string
}

/** A machine as plain, serialisable data: what the SVG, the mermaid text and the dashboard are drawn from. */
export interface VizGraph {
  readonly machine: string
  readonly nodes: ReadonlyArray<VizNode>
  readonly edges: ReadonlyArray<VizEdge>
}

/** The event type XState gives an eventless (`always`) transition. */
const ALWAYS = "always"

/**
 * A short name for XState's generated event types: `after stallTime` for a
 * delay, `done: preflight` / `error: preflight` for an invoked actor's result.
 * Plain events keep their name.
 */
export const eventLabel = (event: string, stateId: string): string => {
  const after = /^xstate\.after\.(.+?)\.(.+)$/.exec(event)
  if (after !== null) return `after ${after[1]}`
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event)
  if (actor !== null) return `${actor[1]}: ${invokedName(actor[2]!, stateId)}`
  const doneState = /^xstate\.done\.state\.(.+)$/.exec(event)
  if (doneState !== null) return `done: ${doneState[1]}`
  return event
}

/** `0.agentSession.preflight` (XState's id for a state's first invoke) -> the state's last key; a named invoke keeps its id. */
const invokedName = (actorId: string, stateId: string): string => {
  if (actorId === "*") return "any actor"
  const generated = /^\d+\.(.+)$/.exec(actorId)
  if (generated !== null && generated[1] === stateId) return stateId.split(".").pop() ?? actorId
  return actorId
}

/** A guard's name: `and`/`or`/`not` and inline guards have none of their own, so they read as `guard`. */
export const guardName = (guard: unknown): string | null => {
  if (guard === undefined || guard === null) return null
  if (typeof guard === "string") return guard
  if (typeof guard === "object" && typeof (guard as { type?: unknown }).type === "string") return (guard as { type: string }).type
  if (typeof guard === "function") return guard.name !== "" ? guard.name : "guard"
  return "guard"
}

const kindOf = (node: AnyStateNode): StateKind => node.type as StateKind

/** Whether `node` is the state its parent enters first. */
const isInitial = (node: AnyStateNode): boolean => {
  const parent = node.parent
  if (parent === undefined || parent.type !== "compound") return false
  return (parent.initial?.target ?? []).some((target: AnyStateNode) => target.id === node.id)
}

/**
 * The machine's states and transitions, from `toDirectedGraph` (xstate/graph):
 * nested states keep their parent, each transition target is an edge.
 * `toDirectedGraph` leaves out eventless (`always`) transitions, which carry
 * decisions here (`settling`): they are added from each state's `always`.
 */
export const machineGraph = (name: string, machine: AnyStateMachine): VizGraph => {
  const nodes: VizNode[] = []
  const edges: VizEdge[] = []
  const visit = (graphNode: DirectedGraphNode, parent: string | null, depth: number): void => {
    const state = graphNode.stateNode
    nodes.push({ id: state.id, label: parent === null ? name : state.key, parent, kind: kindOf(state), initial: isInitial(state), depth })
    for (const edge of graphNode.edges) {
      const guard = guardName(edge.transition.guard)
      const event = edge.transition.eventType
      edges.push(makeEdge(edges.length, state.id, edge.target.id, event, guard))
    }
    for (const transition of state.always ?? []) {
      const targets: ReadonlyArray<AnyStateNode> = transition.target ?? [state]
      for (const target of targets) edges.push(makeEdge(edges.length, state.id, target.id, ALWAYS, guardName(transition.guard)))
    }
    for (const child of graphNode.children) visit(child, state.id, depth + 1)
  }
  visit(toDirectedGraph(machine), null, 0)
  return { machine: name, nodes, edges }
}

const makeEdge = (index: number, source: string, target: string, event: string, guard: string | null): VizEdge => {
  const text = eventLabel(event, source)
  return { id: `e${index}`, source, target, event, guard, label: guard === null ? text : `${text} [${guard}]` }
}
