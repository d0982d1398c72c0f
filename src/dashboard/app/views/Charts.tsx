/** Simple inline-SVG charts (no chart library): horizontal bars with labels. */

export interface Bar {
  readonly label: string
  readonly value: number
  readonly text: string
}

export const BarChart = ({ title, bars, max }: { title: string; bars: ReadonlyArray<Bar>; max?: number }) => {
  const top = max ?? Math.max(1, ...bars.map((bar) => bar.value))
  const rowHeight = 26
  const height = bars.length * rowHeight + 4
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p class="muted">Nothing yet.</p>
      ) : (
        <svg viewBox={`0 0 320 ${height}`} width="100%" role="img" aria-label={title}>
          {bars.map((bar, i) => {
            const y = i * rowHeight + 2
            const width = Math.max(1, (bar.value / top) * 170)
            return (
              <g>
                <text x="0" y={y + 16} class="chart-label">
                  {bar.label.length > 16 ? `${bar.label.slice(0, 15)}…` : bar.label}
                </text>
                <rect x="110" y={y + 3} width={width} height={rowHeight - 8} class="chart-bar" rx="3" />
                <text x={114 + width} y={y + 16} class="chart-value">
                  {bar.text}
                </text>
              </g>
            )
          })}
        </svg>
      )}
    </figure>
  )
}
