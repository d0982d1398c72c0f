import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { CODEX_TEST_KEY_ENV, startOpenAIEndpoint, writeCodexHome, type CodexStep, type OpenAIEndpoint } from "./support/openaiEndpoint.js"
import { eventually, exited, jq, makeWorkspace, type Workspace } from "./support/workspace.js"

/**
 * Warden driving the real Codex CLI (test-agents/), `codex exec --json` and
 * its TUI, against a local scripted OpenAI Responses endpoint.
 */
const agentsBin = path.resolve(new URL("../test-agents/node_modules/.bin", import.meta.url).pathname)

let endpoint: OpenAIEndpoint | null = null
let ws: Workspace | null = null
afterEach(async () => {
  ws?.cleanup()
  await endpoint?.close()
  ws = null
  endpoint = null
})

/** Processes whose environment names this CODEX_HOME: what a session left behind. */
const processesUsing = (codexHome: string): number[] =>
  fs.readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) return []
    try {
      return fs.readFileSync(`/proc/${entry}/environ`, "utf8").includes(`CODEX_HOME=${codexHome}`) ? [Number(entry)] : []
    } catch {
      return []
    }
  })

const setUp = async (script: ReadonlyArray<CodexStep>) => {
  if (!fs.existsSync(path.join(agentsBin, "codex"))) throw new Error("codex is not installed: run `npm run test-agents`")
  endpoint = await startOpenAIEndpoint(script)
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "warden-codex-home-"))
  const codexHome = path.join(home, ".codex")
  ws = makeWorkspace({}, { PATH: `${agentsBin}:${process.env.PATH}`, HOME: home, CODEX_HOME: codexHome, [CODEX_TEST_KEY_ENV]: "sk-test" })
  const repo = fs.realpathSync(ws.makeRepo("repo"))
  writeCodexHome(codexHome, { endpointUrl: endpoint.url, trustedDirs: [repo] })
  return { ws, repo, codexHome, endpoint }
}

describe("Codex through Warden", () => {
  it("codex exec runs its own shell tool to write a file, ends done, verified, with the final message and usage from its events", async () => {
    const { ws, repo } = await setUp([
      { kind: "shell", command: "printf 'hi from codex\\n' > hello.txt" },
      { kind: "text", text: "wrote hello.txt" }
    ])
    const out = await ws.warden("dispatch", "bd-codex", "--repo", repo, "--agent", "codex", "--template", "feature", "--prompt", "create hello.txt", "--wait")
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(fs.readFileSync(path.join(repo, "hello.txt"), "utf8")).toBe("hi from codex\n")
    expect(jq("[.status, .agent, .profile, .completion.source, .verification.overall, .final_message] | @tsv", ws.runFile("bd-codex"))).toBe(
      "done\tcodex\tcodex\texit\tpass\twrote hello.txt"
    )
    expect(ws.readRun("bd-codex").usage).toMatchObject({ input_tokens: 300, output_tokens: 80 })
  })

  it("the TUI ends done through its notify program; codex's own title turn does not end it; nothing is left running", async () => {
    const { ws, repo, codexHome, endpoint } = await setUp([
      { kind: "shell", command: "printf 'tui\\n' > tui.txt" },
      { kind: "text", text: "wrote tui.txt" }
    ])
    const child = ws.start("dispatch", "bd-codex-tui", "--repo", repo, "--agent", "codex-tui", "--prompt", "create tui.txt", "--wait")
    expect(await exited(child), child.output()).toBe(0)
    const run = ws.readRun("bd-codex-tui")
    expect(run.status).toBe("done")
    expect(run.completion).toMatchObject({ source: "notify", kind: "done", detail: { summary: "wrote tui.txt" } })
    expect(run.completion.detail.payload).toMatchObject({ type: "agent-turn-complete", "input-messages": ["create tui.txt"] })
    expect(fs.readFileSync(path.join(repo, "tui.txt"), "utf8")).toBe("tui\n")
    expect(endpoint.requests.some((r) => r.kind === "side")).toBe(true)
    // The title turn's notify reached warden signal and was ignored there, never written as this attempt's signal.
    const signals = fs.readFileSync(path.join(ws.workspace, "state", "watch", "bd-codex-tui.signals.jsonl"), "utf8").trim().split("\n")
    expect(signals.map((line) => JSON.parse(line).source)).toEqual(["notify"])
    await eventually(() => processesUsing(codexHome).length === 0, 10_000, "no codex process left")
  })
})
