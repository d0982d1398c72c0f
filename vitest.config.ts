import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Marks the run; at its end, fails it naming any process the tests left running.
    globalSetup: ["test/support/noLeftovers.ts"],
    testTimeout: 60_000,
    // CI shares two cores between real tmux, real agent CLIs and daemons: a timing-bound
    // integration test that fails is run once more there (and reported as retried).
    retry: process.env.CI ? 1 : 0,
    hookTimeout: 60_000,
    // Integration tests share one tmux binary and the machine has two cores.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1
  }
})
