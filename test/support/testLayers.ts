import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Either, Layer } from "effect"
import { loadConfigSync, type ResolvedConfig } from "../../src/config/loadConfig.js"
import { makeGitTest } from "../../src/git/Git.js"
import { makeProcessesTest } from "../../src/processes/Processes.js"
import { makeAgentProcessesTest } from "../../src/processes/agentProcesses.js"
import { makeMemoryRecordStore } from "../../src/records/RecordStore.js"
import { makeMemoryTerminals } from "../../src/terminals/memoryTerminals.js"
import { workspacePaths } from "../../src/workspace/paths.js"
import { makeHealthProbesTest } from "../../src/services/HealthProbes.js"
import { makeServiceProcessesTest } from "../../src/services/ServiceProcesses.js"
import { SystemdUnitsLive } from "../../src/services/SystemdUnits.js"
import { Notifier, makeNotifier } from "../../src/services/Notifier.js"
import { ArgusAdvisor, noAdvisor } from "../../src/argus/ArgusAdvisor.js"

/**
 * A world on the test layers: a temp dir with a repo, the config that allows it, in-memory terminals,
 * scripted processes, an in-memory git (the repo's head and what an attempt changed) and record store.
 */
export const testWorld = (prefix: string, extra: Partial<ResolvedConfig> = {}) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
  const repo = path.join(dir, "repo")
  fs.mkdirSync(repo)
  const config: ResolvedConfig = {
    ...Either.getOrThrow(loadConfigSync({ workspace: path.join(dir, "ws"), env: { WARDEN_ALLOW_ROOT: "1" } })),
    allowedRoots: [dir],
    minFreeDiskMb: 1,
    minFreeMemoryMb: 1,
    ...extra
  }
  const terminals = makeMemoryTerminals()
  const records = makeMemoryRecordStore()
  const serviceProcesses = makeServiceProcessesTest()
  const probes = makeHealthProbesTest()
  const layer = Layer.mergeAll(
    terminals.layer,
    makeProcessesTest([], ["node"]).layer,
    makeGitTest({ [repo]: { head: "abc123", changes: { newCommits: ["abc124 did it"], status: [], diffStat: " f | 1 +" } } }),
    records.layer,
    makeAgentProcessesTest().layer,
    serviceProcesses.layer,
    probes.layer,
    SystemdUnitsLive,
    Layer.succeed(Notifier, makeNotifier({ dedupMs: 3_600_000 }, {})),
    Layer.succeed(ArgusAdvisor, noAdvisor)
  )
  return { dir, repo, config, paths: workspacePaths(config.workspaceDir), terminals, records, serviceProcesses, probes, layer }
}
