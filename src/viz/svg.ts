import { COMPOUND_HEADER, EDGE_FONT, STATE_FONT, type GraphLayout } from "./layout.js"
import type { VizGraph } from "./machineGraph.js"

/** States to mark: `current` (lit: the state the session is in, with its compound parents, never the machine's root) and `visited` (passed through earlier). */
export interface StateMarks {
  readonly current: ReadonlySet<string>
  readonly visited: ReadonlySet<string>
}

export const NO_MARKS: StateMarks = { current: new Set(), visited: new Set() }

/**
 * The classes the dashboard toggles to light a state from the feed: `lit` on
 * the current state's box (and its compound parents', not the root's: the
 * root is always active, and lit it would fill the chart), `visited` on the states passed
 * through. Each box is `g.state[data-state="<state id>"]`.
 */
export const LIT_CLASS = "lit"
export const VISITED_CLASS = "visited"

const STYLE = `
.warden-statechart { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #fff; }
.state > rect.box { fill: #f6f8fa; stroke: #57606a; stroke-width: 1.2; }
.state.kind-compound > rect.box, .state.kind-parallel > rect.box { fill: #ffffff; }
.state.kind-compound.root > rect.box { fill: #fbfbfc; stroke: #8c959f; }
.state.kind-parallel > rect.box { stroke-dasharray: 6 3; }
.state > rect.final-ring { fill: none; stroke: #57606a; stroke-width: 1.2; }
.state > text { font-size: ${STATE_FONT}px; fill: #1f2328; }
.state.kind-compound > text, .state.kind-parallel > text { font-weight: 600; }
.state > .initial-dot { fill: #1f2328; }
.state > .initial-line { stroke: #1f2328; stroke-width: 1.2; }
.state.${VISITED_CLASS} > rect.box { fill: #ddf4ff; stroke: #54aeff; }
.state.${LIT_CLASS} > rect.box { fill: #fff8c5; stroke: #bf8700; stroke-width: 3; }
.transition > path { fill: none; stroke: #8c959f; stroke-width: 1; }
.transition > text { font-size: ${EDGE_FONT}px; fill: #57606a; }
.caption { font-size: 12px; fill: #1f2328; }
`

export const escapeXml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;")

/** The caption's height: a line per entry, under the chart. */
const CAPTION_LINE = 16

/**
 * The statechart as one self-contained SVG (inline style, no fonts, no
 * scripts): nested states as nested boxes (drawn outermost first), final
 * states with a double border, initial states with a dot, transitions as
 * arrows labelled `event [guard]`. `caption` lines (a replayed step) go under
 * the chart and into its `<title>`.
 */
export const renderSvg = (graph: VizGraph, layout: GraphLayout, marks: StateMarks = NO_MARKS, caption: ReadonlyArray<string> = []): string => {
  const width = Math.ceil(layout.width)
  const chartHeight = Math.ceil(layout.height)
  const height = chartHeight + (caption.length === 0 ? 0 : caption.length * CAPTION_LINE + 12)
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="warden-statechart" data-machine="${escapeXml(graph.machine)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`
  )
  out.push(`<title>${escapeXml([`statechart of ${graph.machine}`, ...caption].join("\n"))}</title>`)
  out.push(`<style>${STYLE}</style>`)
  out.push(
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8c959f"/></marker></defs>`
  )
  out.push(`<g class="states">`)
  for (const node of [...graph.nodes].sort((a, b) => a.depth - b.depth)) {
    const box = layout.nodes[node.id]
    if (box === undefined) continue
    const classes = ["state", `kind-${node.kind}`]
    if (node.parent === null) classes.push("root")
    if (node.initial) classes.push("initial")
    if (marks.current.has(node.id)) classes.push(LIT_CLASS)
    else if (marks.visited.has(node.id)) classes.push(VISITED_CLASS)
    const compound = node.kind === "compound" || node.kind === "parallel"
    out.push(`<g class="${classes.join(" ")}" data-state="${escapeXml(node.id)}">`)
    out.push(`<rect class="box" x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" rx="8" ry="8"/>`)
    if (node.kind === "final") {
      out.push(`<rect class="final-ring" x="${box.x + 3}" y="${box.y + 3}" width="${box.width - 6}" height="${box.height - 6}" rx="6" ry="6"/>`)
    }
    const textY = compound ? box.y + COMPOUND_HEADER / 2 + STATE_FONT / 2 + 2 : box.y + box.height / 2 + STATE_FONT * 0.35
    const textX = compound ? box.x + 12 : box.x + box.width / 2
    out.push(`<text x="${textX}" y="${round(textY)}"${compound ? "" : ` text-anchor="middle"`}>${escapeXml(node.label)}</text>`)
    if (node.initial) {
      const cy = box.y + box.height / 2
      out.push(`<circle class="initial-dot" cx="${box.x - 12}" cy="${cy}" r="4"/>`)
      out.push(`<line class="initial-line" x1="${box.x - 8}" y1="${cy}" x2="${box.x}" y2="${cy}"/>`)
    }
    out.push(`</g>`)
  }
  out.push(`</g>`, `<g class="transitions">`)
  for (const edge of graph.edges) {
    const route = layout.edges[edge.id]
    if (route === undefined || route.points.length === 0) continue
    const d = route.points.map((p, i) => `${i === 0 ? "M" : "L"} ${p.x} ${p.y}`).join(" ")
    out.push(
      `<g class="transition" data-event="${escapeXml(edge.event)}" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}">`
    )
    out.push(`<path d="${d}" marker-end="url(#arrow)"/>`)
    if (route.label !== null) {
      out.push(`<text x="${route.label.x}" y="${round(route.label.y + route.label.height - 3)}">${escapeXml(edge.label)}</text>`)
    }
    out.push(`</g>`)
  }
  out.push(`</g>`)
  if (caption.length > 0) {
    out.push(`<g class="caption">`)
    caption.forEach((line, i) => out.push(`<text class="caption" x="10" y="${chartHeight + 12 + (i + 1) * CAPTION_LINE - 4}">${escapeXml(line)}</text>`))
    out.push(`</g>`)
  }
  out.push(`</svg>`)
  return `${out.join("\n")}\n`
}

const round = (n: number): number => Math.round(n * 10) / 10
