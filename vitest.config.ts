import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Marks the run; at its end, fails it naming any process the tests left running.
    globalSetup: ["test/support/noLeftovers.ts"],
    testTimeout: 60_000,
    // Never retried (vitest's default), in CI or anywhere: a test that fails on a loaded two-core machine
    // has a race (in the product, or a deadline in the test that binds more than it means to); fix it there.
    hookTimeout: 60_000,
    // Integration tests share one tmux binary and the machine has two cores.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1
  }
})
