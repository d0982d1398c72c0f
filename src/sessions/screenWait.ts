import * as fs from "node:fs"
import { Effect } from "effect"
import { Terminals } from "../terminals/Terminals.js"

export type ScreenWait =
  | { readonly _tag: "Matched"; readonly screen: ReadonlyArray<string> }
  | { readonly _tag: "Exited"; readonly screen: ReadonlyArray<string>; readonly status: number | null }
  | { readonly _tag: "TimedOut"; readonly screen: ReadonlyArray<string> }

/**
 * Waits until `predicate` holds for the session's screen. Driven by the
 * transcript file growing (pipe-pane appends as the program prints), with a
 * slow fallback tick for screens that change without output reaching the
 * transcript (a resize, say).
 */
export const waitForScreen = (
  name: string,
  transcriptPath: string,
  predicate: (screen: ReadonlyArray<string>) => boolean,
  timeoutMs: number
) =>
  Effect.gen(function* () {
    const terminals = yield* Terminals
    const look = Effect.gen(function* () {
      const info = yield* terminals.info(name)
      const screen = yield* terminals.capture(name).pipe(Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)))
      if (predicate(screen)) return { _tag: "Matched", screen } as ScreenWait
      if (info === null || info.dead) return { _tag: "Exited", screen, status: info?.deadStatus ?? null } as ScreenWait
      return null
    })
    const first = yield* look
    if (first !== null) return first
    return yield* Effect.async<ScreenWait>((resume) => {
      let done = false
      let checking = false
      let again = false
      const finish = (result: ScreenWait) => {
        if (done) return
        done = true
        cleanup()
        resume(Effect.succeed(result))
      }
      const check = () => {
        if (done) return
        if (checking) {
          again = true
          return
        }
        checking = true
        Effect.runPromise(look.pipe(Effect.catchAll(() => Effect.succeed(null)))).then((result) => {
          checking = false
          if (result !== null) finish(result)
          else if (again) {
            again = false
            check()
          }
        })
      }
      let watcher: fs.FSWatcher | null = null
      try {
        watcher = fs.watch(transcriptPath, () => check())
      } catch {
        // no transcript to watch (yet): the poll below still checks
        watcher = null
      }
      const tick = setInterval(check, 1_000)
      const timer = setTimeout(() => {
        Effect.runPromise(terminals.capture(name).pipe(Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)))).then((screen) =>
          finish({ _tag: "TimedOut", screen })
        )
      }, timeoutMs)
      const cleanup = () => {
        watcher?.close()
        clearInterval(tick)
        clearTimeout(timer)
      }
      return Effect.sync(cleanup)
    })
  })
