/**
 * Which states a replay step lights: step N's own states are current, every earlier step's states (not current)
 * visited. Free of imports, so the dashboard's page bundles it as it is (the CLI's `warden viz --at` and the
 * page's replay mark the same states).
 */
export const marksAt = (
  steps: ReadonlyArray<{ readonly states: ReadonlyArray<string> }>,
  n: number | null
): { current: Set<string>; visited: Set<string> } => {
  const upTo = n ?? steps.length
  const current = new Set(steps[upTo - 1]?.states ?? [])
  const visited = new Set<string>()
  for (const step of steps.slice(0, upTo - 1)) for (const id of step.states) if (!current.has(id)) visited.add(id)
  return { current, visited }
}
