import { Schema } from "effect"
import { lookupGroup, umaskFor, type StateAccess } from "./statePermissions.js"

// Apart from statePermissions.ts: `warden signal` imports that module and must load no Effect module (test/cliStartup.test.ts).

/** Why the operators' group is refused: `unknown-group` (this machine has no group of that name). */
export const OperatorsGroupErrorReason = Schema.Literal("unknown-group")
export type OperatorsGroupErrorReason = typeof OperatorsGroupErrorReason.Type

/** Refuses an operators' group this machine does not know, with its name. */
export class OperatorsGroupError extends Schema.TaggedError<OperatorsGroupError>()("OperatorsGroupError", {
  group: Schema.String,
  reason: OperatorsGroupErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

const groupId = (name: string): number => {
  const gid = lookupGroup(name)
  if (gid === null) {
    throw new OperatorsGroupError({
      group: name,
      reason: "unknown-group",
      detail: `config operatorsGroup "${name}" is not a group on this machine (\`getent group ${name}\` found none): create it or remove the setting`
    })
  }
  return gid
}

/** Who may read the workspace's state: its owner, or also the configured operators' group (which must exist). */
export const stateAccess = (operatorsGroup: string | undefined): StateAccess =>
  operatorsGroup === undefined
    ? { umask: umaskFor(undefined), dirMode: 0o700, fileMask: 0o700, gid: null }
    : { umask: umaskFor(operatorsGroup), dirMode: 0o2750, fileMask: 0o750, gid: groupId(operatorsGroup) }
