/** Small formatting helpers the views share. */

export const duration = (seconds: number | null): string => {
  if (seconds === null || !Number.isFinite(seconds)) return "–"
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
}

export const elapsed = (from: number | null, to: number | null, now: number): string => (from === null ? "–" : duration(((to ?? now) - from) / 1000))

export const clock = (at: string | number | null): string => (at === null ? "–" : new Date(at).toLocaleTimeString())

export const money = (usd: number | null | undefined): string => (usd === null || usd === undefined ? "–" : `$${usd.toFixed(usd < 1 ? 4 : 2)}`)

/** The top state of a lifecycle state name (`running.working` -> `running`). */
export const topState = (state: string): string => state.split(".")[0] ?? state
