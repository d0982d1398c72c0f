import type { VizGraph, VizNode } from "./machineGraph.js"

/** A mermaid identifier for a state id: mermaid's ids take no dots. */
export const mermaidId = (stateId: string): string => stateId.replace(/[^A-Za-z0-9_]/g, "_")

const quote = (text: string): string => text.replace(/"/g, "'")

/**
 * The statechart as mermaid `stateDiagram-v2` text: compound states as
 * composite states, `[*] -->` into each initial state, final states `--> [*]`,
 * every transition `source --> target : event [guard]`. Mermaid needs a
 * browser to draw; this is text for a page or a document that renders it.
 */
export const renderMermaid = (graph: VizGraph): string => {
  const children = new Map<string | null, VizNode[]>()
  for (const node of graph.nodes) children.set(node.parent, [...(children.get(node.parent) ?? []), node])
  const lines = ["stateDiagram-v2"]
  const emit = (node: VizNode, indent: string): void => {
    const id = mermaidId(node.id)
    const inner = children.get(node.id) ?? []
    if (inner.length === 0) {
      lines.push(`${indent}state "${quote(node.label)}" as ${id}`)
    } else {
      lines.push(`${indent}state "${quote(node.label)}" as ${id} {`)
      for (const child of inner) emit(child, `${indent}  `)
      for (const child of inner) if (child.initial) lines.push(`${indent}  [*] --> ${mermaidId(child.id)}`)
      for (const child of inner) if (child.kind === "final") lines.push(`${indent}  ${mermaidId(child.id)} --> [*]`)
      lines.push(`${indent}}`)
    }
  }
  for (const root of children.get(null) ?? []) emit(root, "  ")
  for (const edge of graph.edges) {
    // A colon starts the label: the label's own colons are kept, mermaid takes the rest of the line.
    lines.push(`  ${mermaidId(edge.source)} --> ${mermaidId(edge.target)} : ${edge.label.replace(/[\n;]/g, " ")}`)
  }
  return `${lines.join("\n")}\n`
}
