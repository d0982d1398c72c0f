import { waitFor, type AnyActorRef, type SnapshotFrom } from "xstate"

/**
 * Waits, with XState's `waitFor`, until the actor's snapshot satisfies `condition`. Machine tests
 * resolve on microtasks, so the timeout (real time, not the simulated clock) is only reached when
 * the condition never holds; the error then says what was awaited and where the actor stopped.
 */
export const waitForSnapshot = async <TActor extends AnyActorRef>(
  actor: TActor,
  what: string,
  condition: (snapshot: SnapshotFrom<TActor>) => boolean,
  timeoutMs = 2_000
): Promise<SnapshotFrom<TActor>> => {
  try {
    return await waitFor(actor, condition, { timeout: timeoutMs })
  } catch (cause) {
    const snapshot = actor.getSnapshot() as { status: string; value?: unknown }
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new Error(`waited for ${what}: ${reason}; the actor is ${snapshot.status} in ${JSON.stringify(snapshot.value)}`, { cause })
  }
}
