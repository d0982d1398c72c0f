import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks"
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

/** Scrolls the box (not the page) so that the innermost lit state is in its middle. */
const showLit = (box: HTMLElement) => {
  const lit = [...box.querySelectorAll<SVGGElement>("g.state.lit")].pop()
  if (lit === undefined) return
  const at = lit.getBoundingClientRect()
  const frame = box.getBoundingClientRect()
  box.scrollLeft += at.left + at.width / 2 - (frame.left + frame.width / 2)
  box.scrollTop += at.top + at.height / 2 - (frame.top + frame.height / 2)
}

/**
 * A machine's statechart with states marked: `lit` for the current state and
 * its parents below the machine's root (the root box is always active, so it
 * is never lit), `visited` for the states passed through, by toggling the
 * classes the SVG's own stylesheet draws (`g.state[data-state]`). Fitted to
 * the page's width by default; "Full size" shows it at its natural size in a
 * box that scrolls (and pans by touch), centred on the lit state.
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
  const [full, setFull] = useState(false)
  useEffect(() => {
    machineSvg(machine).then(setSvg, (error) => setProblem(`the statechart cannot be shown: ${messageOf(error)}`))
  }, [machine])
  // Layout effects: the marks and the scroll are done in the same task as the render that asks for them.
  useLayoutEffect(() => {
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
  // Declared after the marks' effect, so it runs after them: the lit state is marked before it is looked for.
  useLayoutEffect(() => {
    if (full && host.current !== null) showLit(host.current)
  }, [full, svg])
  return (
    <div class="statechart-panel">
      {problem === null ? null : <p class="refusal">{problem}</p>}
      <div class="bar">
        <button class={full ? "toggle on" : "toggle"} aria-pressed={full} data-action="full-size" onClick={() => setFull(!full)}>
          {full ? "Fit to width" : "Full size"}
        </button>
      </div>
      <div class={full ? "statechart full" : "statechart"} ref={host} data-machine-chart={machine} />
    </div>
  )
}
