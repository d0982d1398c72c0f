import { Data, Effect, Either, ManagedRuntime } from "effect"
import { loadConfigSync, type ResolvedConfig } from "../config/loadConfig.js"
import { BEAD_ID } from "../sessions/dispatchSpec.js"
import type { SessionServices } from "../sessions/sessionActors.js"
import { liveLayer } from "../runtime/liveLayer.js"
import { workspacePaths, type WorkspacePaths } from "../workspace/paths.js"
import { stateAccess } from "../workspace/stateAccess.js"
import { restrictUmask, tightenState } from "../workspace/statePermissions.js"

/** A command-line error: printed as `warden: <message>` with a non-zero exit. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string; readonly exitCode?: number }> {}

export interface CliEnvironment {
  readonly config: ResolvedConfig
  readonly paths: WorkspacePaths
  readonly runtime: ManagedRuntime.ManagedRuntime<SessionServices, never>
}

export interface GlobalOptions {
  readonly workspace: string | undefined
  readonly config: string | undefined
}

/** Loads the config (refusing an invalid one with its path and field) and opens the workspace. */
export const openEnvironment = (global: GlobalOptions) =>
  Effect.gen(function* () {
    const loaded = loadConfigSync({ workspace: global.workspace, config: global.config })
    if (Either.isLeft(loaded)) return yield* new CliError({ message: loaded.left.message, exitCode: 2 })
    const config = loaded.right
    const paths = workspacePaths(config.workspaceDir)
    // Everything Warden (and the tmux server it starts) writes is private to the workspace's owner, or its operators' group.
    const access = yield* Effect.try({
      try: () => stateAccess(config.operatorsGroup),
      catch: (error) => new CliError({ message: (error as Error).message, exitCode: 2 })
    })
    restrictUmask(access)
    yield* Effect.try({
      try: () => tightenState(paths, access, false),
      catch: (error) => new CliError({ message: `cannot secure the workspace's state under ${paths.root}: ${(error as Error).message}` })
    })
    const runtime = ManagedRuntime.make(liveLayer(config, paths))
    yield* Effect.addFinalizer(() => runtime.disposeEffect)
    return { config, paths, runtime } satisfies CliEnvironment
  })

/** Runs an effect that needs the live services on the environment's runtime. */
export const onRuntime = <A, E>(env: CliEnvironment, effect: Effect.Effect<A, E, SessionServices>) =>
  // Interrupting the command (Ctrl-C) interrupts the effect too: no check is left running behind.
  Effect.promise((signal) => env.runtime.runPromiseExit(effect, { signal })).pipe(Effect.flatMap((exit) => exit))

/** A bead id that cannot be one is a mistyped command line: exit 2, naming the rule. */
export const checkBead = (bead: string) =>
  BEAD_ID.test(bead) ? Effect.void : Effect.fail(new CliError({ message: `invalid bead id "${bead}": it must match ${BEAD_ID.source}`, exitCode: 2 }))

/**
 * How to call warden for this workspace in a hint the operator may copy: with
 * `--workspace` and `--config` when they are not what a plain `warden` finds.
 */
export const cliFor = (env: CliEnvironment): string => {
  const parts = ["warden"]
  const found = loadConfigSync({ env: process.env })
  const plainWorkspace = Either.isRight(found) ? found.right.workspaceDir : null
  if (plainWorkspace !== env.paths.root) parts.push("--workspace", shellWord(env.paths.root))
  if (env.config.file !== null && (!Either.isRight(found) || found.right.file !== env.config.file)) parts.push("--config", shellWord(env.config.file))
  return parts.join(" ")
}

const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

