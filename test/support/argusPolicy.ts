import type { ArgusPolicy } from "../../machines/argus.types.js"

/** Argus's policy for the tests: the config's defaults, one configured service, one agent program; `over` changes what a test needs. */
export const argusPolicy = (over: Partial<ArgusPolicy> = {}): ArgusPolicy => ({
  intervalMs: 300_000,
  dryRun: false,
  maxActionsPerCycle: 5,
  graceSeconds: 300,
  orphanCycles: 3,
  stalledSeconds: 900,
  services: ["gateway"],
  agentExecutables: ["/usr/bin/claude"],
  agentsUid: 1000,
  protectedPids: [1, 4242],
  ...over
})
