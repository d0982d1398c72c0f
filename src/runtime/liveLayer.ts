import { Layer } from "effect"
import type { ResolvedConfig } from "../config/loadConfig.js"
import { GitLive } from "../git/Git.js"
import { ProcessesLive } from "../processes/Processes.js"
import { agentProcessesLayer } from "../processes/agentProcesses.js"
import { fileRecordStoreLayer } from "../records/RecordStore.js"
import { tmuxTerminalsLayer } from "../terminals/tmuxTerminals.js"
import type { WorkspacePaths } from "../workspace/paths.js"

/** The live layers every command runs on: tmux on the agents' socket, real processes, git, the workspace's records. */
export const liveLayer = (config: ResolvedConfig, paths: WorkspacePaths) =>
  Layer.mergeAll(
    tmuxTerminalsLayer(config.tmuxSocket),
    ProcessesLive,
    GitLive.pipe(Layer.provide(ProcessesLive)),
    fileRecordStoreLayer(paths),
    agentProcessesLayer({ killGraceMs: config.killGraceMs, cgroups: config.agentCgroups })
  )
