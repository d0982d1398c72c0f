/**
 * Simple bar charts (no chart library): a grid of label, bar and value, so the
 * text is laid out by the browser (a label wraps, a value takes the room it
 * needs) and never clipped; each bar is a small SVG stretched to its share.
 */

export interface Bar {
  readonly label: string
  readonly value: number
  readonly text: string
}

export const BarChart = ({ title, bars, max }: { title: string; bars: ReadonlyArray<Bar>; max?: number }) => {
  const top = max ?? Math.max(1, ...bars.map((bar) => bar.value))
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p class="muted">Nothing yet.</p>
      ) : (
        <div class="chart-grid" role="list" aria-label={title}>
          {bars.map((bar) => (
            <div class="chart-row" role="listitem">
              <span class="chart-label">{bar.label}</span>
              <svg class="chart-track" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                <rect class="chart-bar" x="0" y="0" width={Math.max(0.5, Math.min(1, bar.value / top) * 100)} height="10" />
              </svg>
              <span class="chart-value">{bar.text}</span>
            </div>
          ))}
        </div>
      )}
    </figure>
  )
}
