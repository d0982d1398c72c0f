import { Runtime, type Effect } from "effect"

/**
 * What the session's actors and observers need of a runtime: to run an effect
 * to a promise (interruptible through a signal) or synchronously. A
 * `ManagedRuntime` is one (the CLI's); `runnerOf` makes one of the runtime a
 * layer provides (the daemon's, built by its layers), so a process has one
 * runtime for all of it.
 */
export interface EffectRunner<R> {
  runPromise<A, E>(effect: Effect.Effect<A, E, R>, options?: { readonly signal?: AbortSignal }): Promise<A>
  runSync<A, E>(effect: Effect.Effect<A, E, R>): A
}

export const runnerOf = <R>(runtime: Runtime.Runtime<R>): EffectRunner<R> => ({
  runPromise: (effect, options) => Runtime.runPromise(runtime)(effect, options),
  runSync: (effect) => Runtime.runSync(runtime)(effect)
})
