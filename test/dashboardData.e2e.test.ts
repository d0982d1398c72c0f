import { describe, expect, it } from "vitest"
import { eventually, makeWorkspace, useDaemon } from "./support/workspace.js"

/**
 * What the dashboard reads besides the records, from the built daemon: the machines drawn from their
 * definitions, a finished session's replay steps, its transcript as a download, the history of runs per
 * profile and template, and the day's memory notes; each refused without the token, and each refusal named.
 */
const ws = makeWorkspace()
const daemon = useDaemon(ws)

const get = async (route: string, token: string | null = daemon.token) => {
  const response = await fetch(`${daemon.base}${route}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } })
  return { status: response.status, type: response.headers.get("content-type") ?? "", disposition: response.headers.get("content-disposition"), text: await response.text() }
}

describe("the dashboard's data endpoints", () => {
  it("draw every machine from its definition, as SVG and as a laid-out graph; an unknown machine is refused with the names", async () => {
    const list = JSON.parse((await get("/v1/machines")).text)
    expect(list.machines).toEqual(["agentSession", "supervisor", "service", "argus"])
    const svg = await get("/v1/machines/agentSession/svg")
    expect(svg.status).toBe(200)
    expect(svg.type).toContain("image/svg+xml")
    expect(svg.text).toContain('data-state="agentSession.running.waitingInput"')
    const graph = JSON.parse((await get("/v1/machines/service/graph")).text)
    expect(graph.nodes.map((n: { id: string }) => n.id)).toContain("service.backingOff")
    const unknown = await get("/v1/machines/agentsession/svg")
    expect(unknown.status).toBe(404)
    expect(JSON.parse(unknown.text)).toMatchObject({ _tag: "UnknownMachine", error: "no machine agentsession: the machines are agentSession, supervisor, service, argus" })
  })

  it("give a finished session's replay steps, its transcript, the history of runs and the day's memory notes", async () => {
    const repo = ws.makeRepo("repo")
    const run = await ws.warden("dispatch", "bd-data", "--repo", repo, "--agent", "shell", "--command", "echo hello from the agent; echo x > x.txt", "--prompt", "x", "--wait")
    expect(run.status).toBe(0)
    await eventually(() => ws.readRun("bd-data")?.lifecycle_state === "done", 10_000, "the records final")
    const history = await get("/v1/sessions/bd-data/history")
    expect(history.status).toBe(200)
    const steps = JSON.parse(history.text).steps as Array<{ n: number; states: string[]; event: { type: string }; decisions: Array<{ kind: string; source: string }> }>
    expect(steps[0]!.n).toBe(1)
    expect(steps.at(-1)!.states.at(-1)).toBe("agentSession.done")
    expect(steps.some((s) => s.states.includes("agentSession.running.working"))).toBe(true)
    expect(steps.flatMap((s) => s.decisions).some((d) => d.kind === "done")).toBe(true)
    const transcript = await get("/v1/sessions/bd-data/transcript")
    expect(transcript.status).toBe(200)
    expect(transcript.type).toContain("text/plain")
    expect(transcript.disposition).toBe('attachment; filename="bd-data.log"')
    expect(transcript.text).toContain("hello from the agent")
    const runs = JSON.parse((await get("/v1/history")).text)
    expect(runs.runs).toEqual([expect.objectContaining({ bead: "bd-data", profile: "shell", outcome: "done", status: "done" })])
    expect(runs.by_profile).toEqual([{ name: "shell", runs: 1, done: 1, pass_rate: 1, mean_duration_seconds: expect.any(Number), cost_usd: null }])
    expect(runs.by_template).toEqual([expect.objectContaining({ name: "(prompt)", runs: 1 })])
    const memory = JSON.parse((await get("/v1/memory")).text)
    expect(memory.text).toContain("bd-data")
    expect(memory.dates).toEqual([memory.date])
    const otherDay = JSON.parse((await get("/v1/memory?date=2001-01-01")).text)
    expect(otherDay).toEqual({ date: "2001-01-01", text: "", dates: [memory.date] })
  })

  it("refuse without the token, and name what is missing or wrong", async () => {
    for (const route of ["/v1/machines", "/v1/machines/agentSession/svg", "/v1/sessions/bd-data/history", "/v1/sessions/bd-data/transcript", "/v1/history", "/v1/memory"]) {
      const refused = await get(route, null)
      expect(refused.status, route).toBe(401)
      expect(refused.text).not.toContain("hello from the agent")
    }
    const none = await get("/v1/sessions/bd-never/history")
    expect(none.status).toBe(404)
    expect(JSON.parse(none.text)).toMatchObject({ _tag: "NoHistory", bead: "bd-never" })
    expect((await get("/v1/sessions/bd-never/transcript")).status).toBe(404)
    const badDate = await get("/v1/memory?date=../../etc/passwd")
    expect(badDate.status).toBe(400)
    expect(badDate.text).toContain("a date YYYY-MM-DD")
  })
})
