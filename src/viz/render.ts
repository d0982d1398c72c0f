import type { AnyStateMachine } from "xstate"
import { layoutGraph, type GraphLayout } from "./layout.js"
import { machineGraph, type VizEdge, type VizGraph, type VizNode } from "./machineGraph.js"
import { renderMermaid } from "./mermaid.js"
import { NO_MARKS, renderSvg, type StateMarks } from "./svg.js"

export const VIZ_FORMATS = ["svg", "json", "mermaid"] as const
export type VizFormat = (typeof VIZ_FORMATS)[number]

/** The graph with its layout in one serialisable document (`--format json`), with the marks when a session is shown. */
export interface LaidOutGraph {
  readonly machine: string
  readonly width: number
  readonly height: number
  readonly nodes: ReadonlyArray<VizNode & { readonly x: number; readonly y: number; readonly width: number; readonly height: number; readonly mark: "current" | "visited" | null }>
  readonly edges: ReadonlyArray<VizEdge & { readonly points: GraphLayout["edges"][string]["points"]; readonly labelBox: GraphLayout["edges"][string]["label"] }>
}

export const laidOut = (graph: VizGraph, layout: GraphLayout, marks: StateMarks = NO_MARKS): LaidOutGraph => ({
  machine: graph.machine,
  width: layout.width,
  height: layout.height,
  nodes: graph.nodes.map((node) => ({
    ...node,
    ...(layout.nodes[node.id] ?? { x: 0, y: 0, width: 0, height: 0 }),
    mark: marks.current.has(node.id) ? "current" : marks.visited.has(node.id) ? "visited" : null
  })),
  edges: graph.edges.map((edge) => ({ ...edge, points: layout.edges[edge.id]?.points ?? [], labelBox: layout.edges[edge.id]?.label ?? null }))
})

/**
 * A machine drawn in one format: svg (laid out by ELK), json (the graph and
 * its layout, plus `extra` such as a session's steps) or mermaid text.
 */
export const renderMachine = async (
  name: string,
  machine: AnyStateMachine,
  format: VizFormat,
  marks: StateMarks = NO_MARKS,
  caption: ReadonlyArray<string> = [],
  extra: Record<string, unknown> = {}
): Promise<string> => {
  const graph = machineGraph(name, machine)
  if (format === "mermaid") return renderMermaid(graph)
  const layout = await layoutGraph(graph)
  if (format === "svg") return renderSvg(graph, layout, marks, caption)
  return `${JSON.stringify({ ...laidOut(graph, layout, marks), ...extra }, null, 2)}\n`
}
