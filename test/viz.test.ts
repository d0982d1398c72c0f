import * as fs from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { SimulatedClock, createActor, fromCallback, fromPromise, type AnyStateMachine, type AnyStateNode } from "xstate"
import { agentSessionMachine } from "../machines/agentSession.machine.js"
import type { SessionEvent, SessionPolicy, WatchInput } from "../machines/agentSession.types.js"
import { sessionSystemId } from "../machines/supervisor.machine.js"
import { loadConfigSync } from "../src/config/loadConfig.js"
import { MachineEventSource, type MachineEvent } from "../src/daemon/machineEvents.js"
import { buildRecords, flattenState, type HistoryEntry } from "../src/records/buildRecords.js"
import { MACHINES } from "../src/viz/machineCatalog.js"
import { machineGraph } from "../src/viz/machineGraph.js"
import { renderMachine } from "../src/viz/render.js"
import { attemptDecisions, marksAt, parseHistory, replaySteps } from "../src/viz/replay.js"
import { workspacePaths } from "../src/workspace/paths.js"
import { makeWorkspace } from "./support/workspace.js"
import { waitForSnapshot } from "./support/waitForSnapshot.js"

/** Every state node of a machine, walked from `machine.root` itself (not through xstate/graph, which the renderer uses). */
const walkStates = (machine: AnyStateMachine): AnyStateNode[] => {
  const out: AnyStateNode[] = []
  const visit = (node: AnyStateNode) => {
    out.push(node)
    for (const child of Object.values(node.states as Record<string, AnyStateNode>)) visit(child)
  }
  visit(machine.root)
  return out
}

interface Expected {
  /** A `data-event` the SVG must hold (an event named in `on`). */
  readonly events: string[]
  /** Label text the SVG must hold (delays, invoked actors' results, eventless transitions, guards). */
  readonly labels: string[]
}

const asArray = <T>(value: T | ReadonlyArray<T> | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? [...value] : [value as T])
const guardsOf = (transitions: unknown): string[] =>
  asArray(transitions as object | object[]).flatMap((t) => {
    const guard = typeof t === "object" && t !== null ? (t as { guard?: unknown }).guard : undefined
    return typeof guard === "string" ? [`[${guard}]`] : []
  })

/** Each state's transitions as its config declares them: `on`, `after`, `invoke` onDone/onError, `always`. */
const expectedTransitions = (machine: AnyStateMachine): Expected => {
  const events: string[] = []
  const labels: string[] = []
  for (const node of walkStates(machine)) {
    const config = node.config as {
      on?: Record<string, unknown>
      after?: Record<string, unknown>
      always?: unknown
      invoke?: { id?: string; onDone?: unknown; onError?: unknown } | Array<{ id?: string; onDone?: unknown; onError?: unknown }>
    }
    for (const [event, transitions] of Object.entries(config.on ?? {})) {
      events.push(event)
      labels.push(...guardsOf(transitions))
    }
    for (const [delay, transitions] of Object.entries(config.after ?? {})) {
      labels.push(`after ${delay}`, ...guardsOf(transitions))
    }
    for (const invoke of asArray(config.invoke)) {
      const name = invoke.id ?? node.key
      if (invoke.onDone !== undefined) labels.push(`done: ${name}`, ...guardsOf(invoke.onDone))
      if (invoke.onError !== undefined) labels.push(`error: ${name}`, ...guardsOf(invoke.onError))
    }
    if (config.always !== undefined) labels.push("always", ...guardsOf(config.always))
  }
  return { events, labels }
}

const attr = (svg: string, name: string): string[] => [...svg.matchAll(new RegExp(`${name}="([^"]*)"`, "g"))].map((m) => m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, "&"))
const texts = (svg: string): string[] => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&amp;/g, "&"))

describe("warden viz draws every machine from its definition", () => {
  it("knows every machine in machines/", () => {
    const files = fs.readdirSync(path.join(__dirname, "..", "machines")).filter((f) => f.endsWith(".machine.ts"))
    expect(Object.keys(MACHINES).sort()).toEqual(files.map((f) => f.replace(".machine.ts", "")).sort())
  })

  for (const [name, machine] of Object.entries(MACHINES)) {
    it(`${name}: the SVG holds a box for every state and every transition's event and guard`, async () => {
      const svg = await renderMachine(name, machine, "svg")
      expect(svg.startsWith("<svg ")).toBe(true)
      expect(svg).not.toMatch(/<script|href="http|@import|@font-face/)
      const states = walkStates(machine).map((node) => node.id)
      expect(new Set(attr(svg, "data-state"))).toEqual(new Set(states))
      // every box is laid out: a rect in each state group
      for (const id of states) expect(svg).toMatch(new RegExp(`data-state="${id.replace(/\./g, "\\.")}">\\s*<rect class="box" x="[\\d.]+" y="[\\d.]+" width="[1-9]`))
      const expected = expectedTransitions(machine)
      const drawnEvents = new Set(attr(svg, "data-event"))
      for (const event of expected.events) expect(drawnEvents, `event ${event}`).toContain(event)
      const labelText = texts(svg).join("\n")
      for (const label of expected.labels) expect(labelText, `label ${label}`).toContain(label)
      // final states are drawn as final, the initial state marked
      for (const node of walkStates(machine).filter((n) => n.type === "final")) {
        expect(svg).toMatch(new RegExp(`class="state kind-final[^"]*" data-state="${node.id.replace(/\./g, "\\.")}"`))
      }
      const initial = (machine.root.initial?.target ?? []) as AnyStateNode[]
      for (const node of initial) expect(svg).toMatch(new RegExp(`class="state kind-\\w+ initial[^"]*" data-state="${node.id.replace(/\./g, "\\.")}"`))
    })

    it(`${name}: the mermaid text and the JSON hold every state`, async () => {
      const states = walkStates(machine)
      const mermaid = await renderMachine(name, machine, "mermaid")
      expect(mermaid.split("\n")[0]).toBe("stateDiagram-v2")
      for (const node of states) expect(mermaid).toContain(`state "${node.parent === undefined ? name : node.key}" as ${node.id.replace(/\./g, "_")}`)
      // braces balance: every composite state is closed
      expect((mermaid.match(/\{/g) ?? []).length).toBe((mermaid.match(/\}/g) ?? []).length)
      const json = JSON.parse(await renderMachine(name, machine, "json")) as {
        nodes: Array<{ id: string; parent: string | null; kind: string; width: number }>
        edges: Array<{ event: string; points: unknown[] }>
      }
      expect(json.nodes.map((n) => n.id).sort()).toEqual(states.map((n) => n.id).sort())
      for (const node of states) {
        const drawn = json.nodes.find((n) => n.id === node.id)!
        expect(drawn.kind).toBe(node.type)
        expect(drawn.parent).toBe(node.parent?.id ?? null)
        expect(drawn.width).toBeGreaterThan(0)
      }
      for (const event of expectedTransitions(machine).events) expect(json.edges.map((e) => e.event)).toContain(event)
      for (const edge of json.edges) expect(edge.points.length).toBeGreaterThanOrEqual(2)
    })
  }

  it("the graph's edges label event and guard as `event [guard]`", () => {
    const graph = machineGraph("agentSession", agentSessionMachine)
    expect(graph.edges).toContainEqual(
      expect.objectContaining({ source: "agentSession.running", target: "agentSession.recording", event: "AGENT.EXITED", guard: "exitedCleanly", label: "AGENT.EXITED [exitedCleanly]" })
    )
    expect(graph.edges).toContainEqual(expect.objectContaining({ source: "agentSession.settling", target: "agentSession.backoff", event: "always", label: "always [willRetry]" }))
  })
})

const policy: SessionPolicy = {
  timeoutMs: 600_000,
  stallMs: 10_000,
  sources: ["signal", "exit"],
  retry: { maxAttempts: 2, backoffInitialMs: 1_000, backoffFactor: 2, backoffMaxMs: 60_000, retryOn: ["agent-failed"] }
}

/**
 * A real session run on XState's SimulatedClock, its inspection turned into
 * machine events by the daemon's converter: attempt 1 stalls, then the agent
 * reports failure; after the backoff, attempt 2 is done and verified.
 */
const recordSession = async (bead: string) => {
  const clock = new SimulatedClock()
  clock.set(Date.parse("2026-12-01T10:00:00.000Z"))
  const source = new MachineEventSource(() => clock.now())
  const events: MachineEvent[] = []
  const watchers: Array<(event: SessionEvent) => void> = []
  let ids = 0
  const machine = agentSessionMachine.provide({
    actors: {
      preflight: fromPromise(async () => ({ at: clock.now(), attemptId: `att-${++ids}`, ok: true, checks: [{ name: "repo-exists", ok: true, detail: "/repo" }] })),
      launch: fromPromise(async () => ({
        at: clock.now(),
        ok: true,
        error: null,
        sessionName: `agent-${bead}`,
        transcriptPath: "/t.log",
        baseCommit: "abc123",
        screen: [],
        signalsOffset: 0,
        promptPending: false
      })),
      watchAgent: fromCallback<SessionEvent, WatchInput>(({ sendBack }) => {
        watchers.push(sendBack)
        return () => undefined
      }),
      capture: fromPromise(async () => ({ at: clock.now(), outputSummary: "last screen", screen: ["$ make", "all good"], report: null })),
      verify: fromPromise(async () => ({
        at: clock.now(),
        overall: "pass" as const,
        checks: [{ name: "changes", status: "pass" as const, durationMs: 1, exitCode: null, outputTail: "", detail: "1 new commit(s)" }],
        diffStat: "",
        newCommits: ["abc124 work"]
      })),
      clean: fromPromise(async () => ({ at: clock.now() })),
      notify: fromPromise(async () => ({ at: clock.now() })),
      remember: fromPromise(async () => ({ at: clock.now() }))
    }
  })
  const actor = createActor(machine, {
    clock,
    systemId: sessionSystemId(bead),
    input: { bead, policy },
    inspect: (inspection) => {
      const event = source.take(inspection)
      if (event !== null) events.push(event)
    }
  })
  const history: HistoryEntry[] = []
  actor.subscribe((snapshot) => {
    const state = flattenState(snapshot.value)
    if (history[history.length - 1]?.state !== state) history.push({ state, at: clock.now(), attempt: Math.max(1, snapshot.context.attempt) })
  })
  actor.start()
  const until = (state: string) => waitForSnapshot(actor, state, (s) => flattenState(s.value) === state)
  const signal = (status: "done" | "failed"): SessionEvent => ({
    type: "AGENT.SIGNAL",
    signal: { attemptId: actor.getSnapshot().context.attemptId, status, summary: `agent says ${status}`, source: "signal", at: clock.now() }
  })
  actor.send({ type: "ADMIT", at: clock.now() } as SessionEvent)
  await until("running.working")
  clock.increment(500)
  watchers[0]!({ type: "AGENT.OUTPUT", at: clock.now() } as SessionEvent)
  clock.increment(policy.stallMs + 1)
  await until("running.stalled")
  clock.increment(1_000)
  watchers[0]!(signal("failed"))
  await until("backoff")
  clock.increment(60_000)
  await until("queued")
  actor.send({ type: "ADMIT", at: clock.now() } as SessionEvent)
  await until("running.working")
  clock.increment(2_000)
  watchers[1]!(signal("done"))
  await until("done")
  actor.stop()
  return { events, snapshot: actor.getSnapshot(), history, clock }
}

describe("warden viz --session and --at", () => {
  const ws = makeWorkspace()
  afterAll(() => ws.cleanup())
  const bead = "bd-viz1"

  it("replay: steps from a recorded session, its attempts, and the decisions of each step", async () => {
    const { events, snapshot, history } = await recordSession(bead)
    const text = events.map((e) => JSON.stringify(e)).join("\n")
    const parsed = parseHistory(text, "h.jsonl")
    if (!parsed.ok) throw new Error(parsed.problem)
    const config = loadConfigSync({ workspace: ws.workspace, config: ws.configFile })
    if (Either.isLeft(config)) throw new Error(config.left.message)
    const { run } = buildRecords(
      {
        bead,
        profile: config.right.profiles.shell!,
        prompt: { ok: true, text: "do it" },
        templateName: null,
        paths: workspacePaths(ws.workspace),
        supervisor: { pid: process.pid, procStart: null, host: "here", kind: "daemon", startedAt: Date.now() }
      },
      { state: flattenState(snapshot.value), final: true, context: snapshot.context },
      history,
      Date.now(),
      "/repo"
    )
    const replay = replaySteps(agentSessionMachine, parsed.value, sessionSystemId(bead), attemptDecisions(run))
    if (!replay.ok) throw new Error(replay.problem)
    const steps = replay.value
    const leaf = (n: number) => steps[n - 1]!.states[steps[n - 1]!.states.length - 1]
    expect(steps[0]!.states).toEqual(["agentSession.queued"])
    expect(steps.map((s) => s.attempt)).toEqual([...steps].map((s) => (steps.indexOf(s) < steps.findIndex((x, i) => i > 2 && x.states.includes("agentSession.preflight")) ? 1 : 2)))
    const stalled = steps.find((s) => s.states.includes("agentSession.running.stalled"))!
    expect(stalled.event.label).toBe("after stallTime")
    const failed = steps.find((s) => s.attempt === 1 && s.states.includes("agentSession.recording"))!
    expect(failed.event).toMatchObject({ type: "AGENT.SIGNAL", label: "AGENT.SIGNAL" })
    expect(failed.decisions).toEqual([expect.objectContaining({ kind: "failed", source: "signal", completion: true })])
    // the last attempt's every decision is in its run record: the verification's lands on leaving `verifying`
    const verified = steps.find((s) => s.attempt === 2 && s.states.includes("agentSession.cleaning"))!
    expect(verified.decisions).toEqual([expect.objectContaining({ kind: "done", source: "verification", completion: false, detail: { reason: "changes=pass" } })])
    const claimed = steps.find((s) => s.attempt === 2 && s.states.includes("agentSession.recording"))!
    expect(claimed.decisions).toEqual([expect.objectContaining({ kind: "done", source: "signal", completion: true })])
    expect(leaf(steps.length)).toBe("agentSession.done")
    const marks = marksAt(steps, stalled.n)
    expect([...marks.current]).toEqual(["agentSession.running", "agentSession.running.stalled"])
    expect([...marks.visited].sort()).toEqual(["agentSession.launching", "agentSession.preflight", "agentSession.queued", "agentSession.running.working"])

    // the bead dispatched again after it ended (`warden retry`): the new run's attempts count from 1, and the record's decisions are its own
    const again = replaySteps(agentSessionMachine, [...parsed.value, ...parsed.value], sessionSystemId(bead), attemptDecisions(run))
    if (!again.ok) throw new Error(again.problem)
    expect(again.value.map((s) => s.attempt)).toEqual([...steps.map((s) => s.attempt), ...steps.map((s) => s.attempt)])
    expect(again.value.slice(0, steps.length).flatMap((s) => s.decisions)).toEqual([])
    expect(again.value[steps.length + failed.n - 1]!.decisions).toEqual(failed.decisions)

    // the same files through the built CLI: no daemon runs here
    fs.mkdirSync(path.join(ws.workspace, "state", "history"), { recursive: true })
    fs.writeFileSync(path.join(ws.workspace, "state", "history", `${bead}.jsonl`), `${text}\n`)
    fs.mkdirSync(path.dirname(ws.runFile(bead)), { recursive: true })
    fs.writeFileSync(ws.runFile(bead), JSON.stringify(run))

    const whole = await ws.warden("viz", "agentSession", "--session", bead)
    expect(whole.stderr).toBe("")
    expect(whole.status).toBe(0)
    const litIds = [...whole.stdout.matchAll(/class="state [^"]*\blit\b[^"]*" data-state="([^"]+)"/g)].map((m) => m[1])
    expect(litIds).toEqual(["agentSession.done"])
    const visitedIds = [...whole.stdout.matchAll(/class="state [^"]*\bvisited\b[^"]*" data-state="([^"]+)"/g)].map((m) => m[1]).sort()
    expect(visitedIds).toEqual(
      [
        "agentSession.queued", "agentSession.preflight", "agentSession.launching", "agentSession.running", "agentSession.running.working",
        "agentSession.running.stalled", "agentSession.recording", "agentSession.verifying", "agentSession.cleaning", "agentSession.notifying",
        "agentSession.remembering", "agentSession.backoff"
      ].sort()
    )

    const at = await ws.warden("viz", "agentSession", "--session", bead, "--at", String(failed.n), "--format", "json")
    expect(at.stderr).toBe("")
    const doc = JSON.parse(at.stdout) as {
      step: { n: number; event: { type: string }; decisions: Array<{ kind: string; detail: { reason?: string } }> }
      session: { current: string[] }
      steps: unknown[]
      nodes: Array<{ id: string; mark: string | null }>
    }
    expect(doc.step.n).toBe(failed.n)
    expect(doc.step.event.type).toBe("AGENT.SIGNAL")
    expect(doc.step.decisions[0]).toMatchObject({ kind: "failed" })
    expect(doc.session.current).toEqual(["agentSession.recording"])
    expect(doc.nodes.find((n) => n.id === "agentSession.recording")!.mark).toBe("current")
    expect(doc.nodes.find((n) => n.id === "agentSession.running.stalled")!.mark).toBe("visited")
    expect(doc.nodes.find((n) => n.id === "agentSession.done")!.mark).toBe(null)
    expect(doc.steps).toHaveLength(steps.length)

    const svgAt = await ws.warden("viz", "agentSession", "--session", bead, "--at", String(failed.n))
    expect(svgAt.status).toBe(0)
    expect(svgAt.stdout).toMatch(new RegExp(`<title>[^<]*step ${failed.n} of ${steps.length} \\(attempt 1\\): AGENT\\.SIGNAL -&gt; agentSession\\.recording`))
    expect(svgAt.stdout).toMatch(/completion: failed by signal at [^<]*summary=/)

    const outOfRange = await ws.warden("viz", "agentSession", "--session", bead, "--at", String(steps.length + 1))
    expect(outOfRange.status).toBe(2)
    expect(outOfRange.stderr).toContain(`--at ${steps.length + 1}: bead ${bead}'s history has steps 1 to ${steps.length}`)
  })

  it("a bead without history is an error naming the file; --at needs --session", async () => {
    const none = await ws.warden("viz", "agentSession", "--session", "bd-none")
    expect(none.status).toBe(1)
    expect(none.stderr).toContain(`no machine history for bead bd-none: ${path.join(ws.workspace, "state", "history", "bd-none.jsonl")} does not exist`)
    const noSession = await ws.warden("viz", "agentSession", "--at", "2")
    expect(noSession.status).toBe(2)
    expect(noSession.stderr).toContain("--at N replays a session's history: give --session <bead> too")
  })

  it("a history line that is not a machine event is named with its line", () => {
    const bad = parseHistory(`${JSON.stringify({ kind: "state", actor: "session:b", at: 1, value: "queued", event: "x", status: "active" })}\n{"kind":"nope"}\n`, "f.jsonl")
    expect(bad).toEqual({ ok: false, problem: expect.stringContaining("f.jsonl:2: not a machine event") })
  })
})

describe("the built CLI", () => {
  const ws = makeWorkspace()
  afterAll(() => ws.cleanup())

  it("`warden viz agentSession --format svg` prints the SVG; an unknown machine is refused with the known names", async () => {
    const ok = await ws.warden("viz", "agentSession", "--format", "svg")
    expect(ok.status).toBe(0)
    expect(ok.stderr).toBe("")
    expect(ok.stdout).toMatch(/^<svg [^>]*data-machine="agentSession"/)
    expect(ok.stdout.trim().endsWith("</svg>")).toBe(true)
    for (const node of walkStates(agentSessionMachine)) expect(ok.stdout).toContain(`data-state="${node.id}"`)
    const unknown = await ws.warden("viz", "agentSesion")
    expect(unknown.status).toBe(2)
    expect(unknown.stdout).toBe("")
    expect(unknown.stderr).toContain('unknown machine "agentSesion" (did you mean agentSession?); machines: agentSession, supervisor, service, argus')
  })
})
