import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { RecentFailures } from "../src/daemon/recentFailures.js"
import { StallWatch } from "../src/daemon/stallWatch.js"

/** The daemon's two inputs to Argus beyond snapshots: a stall that lasts wakes it; failures are counted by reason. */
describe("StallWatch", () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it("wakes once when a session stays stalled or waiting for the whole age, never when it moves on first", () => {
    const woken: string[] = []
    const watch = new StallWatch(60_000, (bead, state) => woken.push(`${bead} ${state}`))
    watch.note("bd-1", "running.waitingInput")
    watch.note("bd-2", "running.stalled")
    watch.note("bd-3", "running.working")
    vi.advanceTimersByTime(30_000)
    // The same state noted again (another snapshot) does not restart its clock.
    watch.note("bd-1", "running.waitingInput")
    // bd-2 answers before the age: its timer is cancelled.
    watch.note("bd-2", "running.working")
    vi.advanceTimersByTime(30_000)
    expect(woken).toEqual(["bd-1 running.waitingInput"])
    vi.advanceTimersByTime(600_000)
    expect(woken).toEqual(["bd-1 running.waitingInput"])
    // A new entry into a stalled state starts a new clock; the session's end or the daemon's stop cancels it.
    watch.note("bd-1", "running.working")
    watch.note("bd-1", "running.stalled")
    watch.note("bd-4", "running.stalled")
    watch.forget("bd-4")
    watch.note("bd-5", "running.stalled")
    watch.close()
    vi.advanceTimersByTime(60_000)
    expect(woken).toEqual(["bd-1 running.waitingInput"])
  })
})

describe("RecentFailures", () => {
  it("counts each failed attempt once, by reason, within the window", () => {
    const failures = new RecentFailures(3_600_000)
    failures.note("bd-1#1", "agent-exited", 1_000)
    failures.note("bd-1#1", "agent-exited", 2_000)
    failures.note("bd-1#2", "timeout", 3_000)
    failures.note("bd-2#1", "agent-exited", 4_000)
    expect(failures.byReason(5_000)).toEqual([
      { reason: "agent-exited", count: 2 },
      { reason: "timeout", count: 1 }
    ])
    expect(failures.byReason(1_000 + 3_600_000)).toEqual([
      { reason: "agent-exited", count: 1 },
      { reason: "timeout", count: 1 }
    ])
    expect(failures.byReason(10_000_000)).toEqual([])
  })
})
