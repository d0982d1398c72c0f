import * as fs from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import type { ResolvedConfig } from "../config/loadConfig.js"
import type { DispatchBody } from "../sessions/dispatchBody.js"
import { expandHome } from "../workspace/paths.js"
import { RepoMissing, RepoNotAllowed, UnknownProfile } from "./errors.js"

/**
 * What a dispatch names must exist and be allowed: a configured profile, and a
 * repo that is there and lies under an allowed root once symlinks are
 * resolved. Gives the repo's real path.
 */
export const checkDispatchTarget = (config: ResolvedConfig, body: DispatchBody): Either.Either<string, UnknownProfile | RepoMissing | RepoNotAllowed> => {
  if (!(body.agent in config.profiles)) return Either.left(new UnknownProfile({ profile: body.agent, configured: Object.keys(config.profiles) }))
  const repo = path.resolve(expandHome(body.repo))
  let real: string
  try {
    real = fs.realpathSync(repo)
  } catch {
    // realpath fails only for a path that is not there (or not reachable): refused, naming it.
    return Either.left(new RepoMissing({ repo }))
  }
  const roots = config.allowedRoots.flatMap((root) => {
    try {
      return [fs.realpathSync(expandHome(root))]
    } catch {
      // An allowed root that does not exist allows nothing; the others still count.
      return []
    }
  })
  if (!roots.some((root) => real === root || real.startsWith(root.endsWith("/") ? root : `${root}/`))) {
    return Either.left(new RepoNotAllowed({ repo: real, allowedRoots: config.allowedRoots }))
  }
  return Either.right(real)
}
