import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js"
import type { VizGraph } from "./machineGraph.js"

/** A state's box, in absolute coordinates (pixels, origin top left). */
export interface NodeBox {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/** A transition's route: its points in absolute coordinates, and where its label sits. */
export interface EdgeRoute {
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }>
  readonly label: NodeBox | null
}

export interface GraphLayout {
  readonly width: number
  readonly height: number
  readonly nodes: Readonly<Record<string, NodeBox>>
  readonly edges: Readonly<Record<string, EdgeRoute>>
}

/** Font sizes the SVG draws with; the boxes are sized from them and the label's length. */
export const STATE_FONT = 13
export const EDGE_FONT = 10
/** Room for a compound state's own name above its children. */
export const COMPOUND_HEADER = 26

/** An estimate of a sans-serif label's width: the SVG names no font file, so no metrics are at hand. */
export const textWidth = (text: string, fontSize: number): number => Math.ceil(text.length * fontSize * 0.6)

type Elk = { layout: (graph: ElkNode) => Promise<ElkNode> }

/**
 * elkjs (1.6 MB of code) is loaded when a layout is asked for, and kept out
 * of the CLI's bundle (a specifier esbuild does not follow): every other
 * command would parse it at each start otherwise.
 */
const loadElk = async (): Promise<Elk> => {
  const specifier: string = "elkjs/lib/elk.bundled.js"
  const module = (await import(specifier)) as { default: new () => Elk }
  return new module.default()
}

/**
 * Lays the graph out offline with ELK's layered algorithm: compound states as
 * nested boxes sized to hold their children, edges routed across the levels
 * (`hierarchyHandling: INCLUDE_CHILDREN`), every coordinate made absolute.
 */
export const layoutGraph = async (graph: VizGraph): Promise<GraphLayout> => {
  const children = new Map<string | null, VizGraph["nodes"][number][]>()
  for (const node of graph.nodes) children.set(node.parent, [...(children.get(node.parent) ?? []), node])
  const toElk = (node: VizGraph["nodes"][number]): ElkNode => {
    const inner = children.get(node.id) ?? []
    const labelWidth = textWidth(node.label, STATE_FONT) + 28
    if (inner.length === 0) return { id: node.id, width: Math.max(90, labelWidth), height: 36 }
    return {
      id: node.id,
      layoutOptions: {
        "elk.padding": `[top=${COMPOUND_HEADER + 12},left=16,bottom=16,right=16]`,
        "elk.nodeSize.constraints": "MINIMUM_SIZE",
        "elk.nodeSize.minimum": `(${labelWidth}, 60)`
      },
      children: inner.map(toElk)
    }
  }
  const edges: ElkExtendedEdge[] = graph.edges.map((edge) => ({
    id: edge.id,
    sources: [edge.source],
    targets: [edge.target],
    labels: [{ id: `${edge.id}.label`, text: edge.label, width: textWidth(edge.label, EDGE_FONT) + 4, height: EDGE_FONT + 4 }]
  }))
  const roots = children.get(null) ?? []
  const elkGraph: ElkNode = {
    id: "__layout_root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.edgeRouting": "POLYLINE",
      "elk.layered.spacing.nodeNodeBetweenLayers": "40",
      "elk.spacing.nodeNode": "30",
      "elk.spacing.edgeLabel": "4",
      "elk.edgeLabels.inline": "false",
      "elk.padding": "[top=10,left=10,bottom=10,right=10]",
      "elk.json.shapeCoords": "ROOT",
      "elk.json.edgeCoords": "ROOT"
    },
    children: roots.map(toElk),
    edges
  }
  const elk = await loadElk()
  const laid = await elk.layout(elkGraph)
  const nodes: Record<string, NodeBox> = {}
  const collect = (node: ElkNode): void => {
    for (const child of node.children ?? []) {
      nodes[child.id] = { x: child.x ?? 0, y: child.y ?? 0, width: child.width ?? 0, height: child.height ?? 0 }
      collect(child)
    }
  }
  collect(laid)
  const routes: Record<string, EdgeRoute> = {}
  const allEdges: ElkExtendedEdge[] = []
  const gatherEdges = (node: ElkNode): void => {
    allEdges.push(...((node.edges ?? []) as ElkExtendedEdge[]))
    for (const child of node.children ?? []) gatherEdges(child)
  }
  gatherEdges(laid)
  for (const edge of allEdges) {
    const section = edge.sections?.[0]
    const points = section === undefined ? [] : [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]
    const label = edge.labels?.[0]
    routes[edge.id] = {
      points: points.map((p) => ({ x: round(p.x), y: round(p.y) })),
      label: label === undefined || label.x === undefined ? null : { x: round(label.x), y: round(label.y ?? 0), width: label.width ?? 0, height: label.height ?? 0 }
    }
  }
  for (const id of Object.keys(nodes)) {
    const box = nodes[id]!
    nodes[id] = { x: round(box.x), y: round(box.y), width: round(box.width), height: round(box.height) }
  }
  return { width: round(laid.width ?? 0), height: round(laid.height ?? 0), nodes, edges: routes }
}

const round = (n: number): number => Math.round(n * 10) / 10
