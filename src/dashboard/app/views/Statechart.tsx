import { useEffect, useRef, useState } from "preact/hooks"
import { getText, messageOf } from "../api.js"

const svgs = new Map<string, Promise<string>>()

/** A machine's SVG from the daemon (`warden viz`'s rendering), fetched once per page. */
const machineSvg = (machine: string): Promise<string> => {
  let svg = svgs.get(machine)
  if (svg === undefined) {
    svg = getText(`/v1/machines/${machine}/svg`)
    svg.catch(() => svgs.delete(machine))
    svgs.set(machine, svg)
  }
  return svg
}

/**
 * A machine's statechart with states marked: `lit` for the current state and
 * its parents, `visited` for the states passed through, by toggling the
 * classes the SVG's own stylesheet draws (`g.state[data-state]`).
 */
export const Statechart = ({
  machine,
  current,
  visited,
  stamp
}: {
  machine: string
  current: ReadonlyArray<string>
  visited: ReadonlySet<string>
  /** What the marks show (`live`, `step N`), set as `data-marked` once they are drawn. */
  stamp: string
}) => {
  const host = useRef<HTMLDivElement>(null)
  const [svg, setSvg] = useState<string | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    machineSvg(machine).then(setSvg, (error) => setProblem(`the statechart cannot be shown: ${messageOf(error)}`))
  }, [machine])
  useEffect(() => {
    const element = host.current
    if (element === null || svg === null) return
    // The SVG comes from the daemon's own renderer (escaped text, no scripts); it is parsed once per chart.
    if (element.dataset.machine !== machine) {
      element.innerHTML = svg
      element.dataset.machine = machine
    }
    const lit = new Set(current)
    for (const node of element.querySelectorAll<SVGGElement>("g.state[data-state]")) {
      const id = node.dataset.state ?? ""
      node.classList.toggle("lit", lit.has(id))
      node.classList.toggle("visited", !lit.has(id) && visited.has(id))
    }
    element.dataset.marked = stamp
  }, [svg, machine, current, visited, stamp])
  return (
    <div class="statechart-panel">
      {problem === null ? null : <p class="refusal">{problem}</p>}
      <div class="statechart" ref={host} data-machine-chart={machine} />
    </div>
  )
}
