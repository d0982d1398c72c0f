import { Effect, Layer } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decideByRules, validate } from "../machines/argus.rules.js"
import { emptyMemory, type ArgusPolicy, type Observations } from "../machines/argus.types.js"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { AdvisorFailed, ArgusAdvisor, advisorLayer } from "../src/argus/ArgusAdvisor.js"
import { LLM_LIMITS, PROMPT_MARKER, argusPrompt, findings, parseAnswer } from "../src/argus/llmContract.js"
import { decideWithAdvisor } from "../src/argus/llmDecider.js"
import { argusPolicy } from "./support/argusPolicy.js"

/**
 * Argus's LLM decider without a network: the seed's prompt contract read both ways, and the decider's
 * fallbacks (the rules decide when the model is down, slow or answers nonsense; it is not asked when all
 * is normal), with a scripted advisor in place of the Messages API (the e2e test speaks the real wire).
 */
const NOW = 1_800_000_000_000

const policy: ArgusPolicy = argusPolicy()

const calm: Observations = {
  at: NOW,
  memoryUsedPercent: 40,
  diskUsedPercent: 30,
  load1: 0.5,
  cores: 2,
  services: [{ name: "gateway", state: "running.healthy", restarts: 0 }],
  orphans: [],
  tmux: [],
  stalledSessions: [],
  recentFailures: []
}

const troubled: Observations = {
  ...calm,
  orphans: [{ pid: 777, startTicks: 5, exe: "/usr/bin/claude", ageSeconds: 900, attemptId: "att-dead", inAgentCgroup: false, uid: 1000, seenCycles: 3 }],
  tmux: [{ session: "agent-old", bead: "old", live: false }, { session: "agent-live", bead: "live", live: true }]
}

/** An advisor that answers from a script and counts its calls. */
const scripted = (answers: ReadonlyArray<Effect.Effect<string, AdvisorFailed>>) => {
  let calls = 0
  const prompts: string[] = []
  const layer = Layer.succeed(ArgusAdvisor, {
    describe: "scripted",
    ask: (prompt) => {
      prompts.push(prompt.user)
      return answers[Math.min(calls++, answers.length - 1)]!
    }
  })
  return { layer, calls: () => calls, prompts }
}

const decide = (obs: Observations, layer: Layer.Layer<ArgusAdvisor>) =>
  Effect.runPromise(decideWithAdvisor({ observations: obs, policy, memory: emptyMemory }).pipe(Effect.provide(layer)))

describe("the seed's prompt contract", () => {
  it("reads the answer in a code fence or bare, with the seed's five fields on every action", () => {
    const answer = {
      assessment: "one orphan",
      actions: [
        { type: "kill_pid", target: "777", reason: "orphan", message: "", observation: "seen thrice" },
        { type: "log", target: "orphans", reason: "noted", message: "", observation: "an orphan claude" }
      ],
      observations: ["an orphan"]
    }
    for (const text of [JSON.stringify(answer), "Here it is:\n```json\n" + JSON.stringify(answer, null, 2) + "\n```\nDone.", "```\n" + JSON.stringify(answer) + "\n```"]) {
      const parsed = parseAnswer(text)
      expect(parsed.ok).toBe(true)
      if (!parsed.ok) continue
      expect(parsed.assessment).toBe("one orphan")
      // The pid as text is read as a number; the notes of an action without text are dropped; a log's text is its observation.
      expect(parsed.actions).toEqual([
        { type: "kill_pid", target: 777, reason: "orphan" },
        { type: "log", target: "orphans", reason: "noted", message: "an orphan claude" }
      ])
      const decisions = validate(parsed.actions, troubled, policy, emptyMemory, NOW, "llm")
      expect(decisions.map((d) => d.verdict)).toEqual(["done", "done"])
    }
  })

  it("refuses prose, a bare list, an object without actions, and an answer too long to read", () => {
    expect(parseAnswer("Everything looks fine. Maybe restart sshd?")).toMatchObject({ ok: false, why: expect.stringMatching(/not JSON/) })
    expect(parseAnswer('[{"type":"log"}]')).toMatchObject({ ok: false, why: "the answer is not a JSON object" })
    expect(parseAnswer('{"assessment":"ok"}')).toMatchObject({ ok: false, why: "the answer has no list of actions" })
    expect(parseAnswer(`{"actions":[],"pad":"${"x".repeat(LLM_LIMITS.maxAnswerChars)}"}`)).toMatchObject({ ok: false, why: expect.stringMatching(/over/) })
  })

  it("reads at most 50 proposals of a thousand, and says so in one refusal", () => {
    const parsed = parseAnswer(JSON.stringify({ actions: Array.from({ length: 1000 }, () => ({ type: "kill_pid", target: 1, reason: "x" })) }))
    expect(parsed.ok && parsed.actions.length).toBe(LLM_LIMITS.maxProposals)
    expect(parsed.ok && parsed.rejected).toEqual(["950 further action(s) ignored: an answer may propose at most 50"])
  })

  it("keeps unknown fields and types for the allowlist to refuse: normalising changes nothing an action would do", () => {
    const parsed = parseAnswer(JSON.stringify({ actions: [{ type: "exec", target: "/bin/sh", reason: "x" }, { type: "kill_pid", target: 777, reason: "x", signal: "SIGSTOP" }, { type: "kill_pid", target: "777; reboot", reason: "x" }] }))
    expect(parsed.ok).toBe(true)
    const decisions = validate(parsed.ok ? parsed.actions : [], troubled, policy, emptyMemory, NOW, "llm")
    expect(decisions.map((d) => [d.verdict, d.why])).toEqual([
      ["refused", expect.stringMatching(/unknown action type "exec"/)],
      ["refused", "unexpected field(s) signal in kill_pid"],
      ["refused", "kill_pid's target must be an integer pid"]
    ])
  })

  it("asks with the observations, the policy's facts and what was refused lately; calm observations have no findings", () => {
    expect(findings(calm)).toEqual([])
    expect(findings(troubled)).toEqual(["orphan pid 777 (/usr/bin/claude)", "tmux agent-old with no live bead"])
    expect(findings({ ...calm, recentFailures: [{ reason: "agent-exited", count: 2 }] })).toEqual(["2 recent failure(s): agent-exited"])
    const prompt = argusPrompt(troubled, policy, { ...emptyMemory, refused: [{ action: { type: "kill_pid", target: 1 }, source: "llm", verdict: "refused", why: "pid 1 is never killed" }] })
    expect(prompt.user.startsWith(PROMPT_MARKER)).toBe(true)
    expect(prompt.user).toContain('"pid": 777')
    expect(prompt.user).toContain("pid 1 is never killed")
    expect(prompt.system).toMatch(/restart_service[\s\S]*kill_pid[\s\S]*kill_tmux[\s\S]*alert[\s\S]*log/)
  })
})

describe("the LLM decider", () => {
  it("is not asked when the observations are all normal", async () => {
    const advisor = scripted([Effect.succeed('{"actions":[{"type":"kill_pid","target":1,"reason":"x"}]}')])
    const output = await decide(calm, advisor.layer)
    expect(advisor.calls()).toBe(0)
    expect(output).toEqual({ actions: [], source: "rules", decider: "rules: all observations normal, the LLM was not asked" })
  })

  it("proposes what the model answers, as llm, with its assessment", async () => {
    const advisor = scripted([Effect.succeed('```json\n{"assessment":"kill it","actions":[{"type":"kill_pid","target":777,"reason":"orphan","message":"","observation":""}],"observations":[]}\n```')])
    const output = await decide(troubled, advisor.layer)
    expect(advisor.calls()).toBe(1)
    expect(advisor.prompts[0]).toContain("agent-old")
    expect(output).toEqual({ actions: [{ type: "kill_pid", target: 777, reason: "orphan" }], source: "llm", decider: "llm: scripted", assessment: "kill it" })
  })

  it("lets the rules decide when the model is down, slow or answers nonsense, and says why", async () => {
    const rules = decideByRules(troubled, policy, emptyMemory)
    expect(rules.length).toBeGreaterThan(0)
    const down = await decide(troubled, scripted([Effect.fail(new AdvisorFailed({ reason: "down", detail: "HTTP 529: overloaded" }))]).layer)
    expect(down).toEqual({ actions: rules, source: "rules", decider: "rules: the LLM failed (HTTP 529: overloaded)" })
    const slow = await decide(troubled, scripted([Effect.fail(new AdvisorFailed({ reason: "slow", detail: "no answer within 30 s" }))]).layer)
    expect(slow.decider).toBe("rules: the LLM was too slow (no answer within 30 s)")
    expect(slow.actions).toEqual(rules)
    const prose = await decide(troubled, scripted([Effect.succeed("I would restart sshd.")]).layer)
    expect(prose.source).toBe("rules")
    expect(prose.actions).toEqual(rules)
    expect(prose.rejected).toEqual([expect.stringMatching(/^the LLM's answer: the answer is not JSON: .*; the rules decided instead$/)])
  })
})

describe("the validator over generated LLM answers", () => {
  const target = fc.oneof(fc.constantFrom<unknown>(1, 0, -1, 4242, 777, "777", "gateway", "sshd", "agent-old", "agent-live", "agent-x$(reboot)", "a;b", null), fc.string(), fc.integer())
  const text = fc.oneof(fc.constantFrom<unknown>("why", "", "\u001b[2J", null), fc.string({ maxLength: 30 }))
  const action = fc.record(
    {
      type: fc.oneof(fc.constantFrom<unknown>("restart_service", "kill_pid", "kill_tmux", "alert", "log", "shell", "exec"), fc.string()),
      target,
      reason: text,
      message: text,
      observation: text,
      command: fc.string()
    },
    { requiredKeys: ["type"] }
  )
  const answer = fc
    .record({ assessment: text, actions: fc.oneof(fc.array(fc.oneof(action, fc.jsonValue()), { maxLength: 80 }), fc.jsonValue()), observations: fc.jsonValue() }, { requiredKeys: [] })
    .chain((body) => fc.constantFrom(JSON.stringify(body), "```json\n" + JSON.stringify(body) + "\n```", `prose ${JSON.stringify(body).slice(0, 20)}`))

  it("never accepts anything outside the allowlist, whatever the model answers", () => {
    fc.assert(
      fc.property(answer, (raw) => {
        const parsed = parseAnswer(raw)
        if (!parsed.ok) return
        const decisions = validate(parsed.actions, troubled, policy, emptyMemory, NOW, "llm")
        expect(decisions.length).toBe(parsed.actions.length)
        const accepted = decisions.filter((d) => d.verdict !== "refused")
        expect(accepted.length).toBeLessThanOrEqual(policy.maxActionsPerCycle)
        for (const { action } of accepted) {
          switch (action.type) {
            case "kill_pid":
              // The one orphan observed: an agent's program, old enough, seen often enough; never 1 or the daemon.
              expect(action.target).toBe(777)
              break
            case "kill_tmux":
              expect(action.target).toBe("agent-old")
              break
            case "restart_service":
              expect(action.target).toBe("gateway")
              break
            case "alert":
            case "log":
              expect(action.target).toMatch(/^[A-Za-z0-9][A-Za-z0-9:._@+-]*$/)
              expect(action.message).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/)
              break
            default:
              throw new Error(`accepted outside the allowlist: ${JSON.stringify(action)}`)
          }
          expect(Object.keys(action).every((key) => ["type", "target", "reason", "message"].includes(key))).toBe(true)
        }
      }),
      { seed: 1512, numRuns: 400 }
    )
  })
})

describe("the Messages API advisor's refusals name what to fix", () => {
  const ask = (env: Record<string, string>, baseUrl: string) =>
    Effect.runPromise(
      Effect.flip(
        Effect.flatMap(ArgusAdvisor, (advisor) => advisor.ask({ system: "s", user: "u" })).pipe(
          Effect.provide(advisorLayer("llm", { via: "messages-api", baseUrl, model: "m", apiKeyEnv: "ARGUS_KEY", timeoutSeconds: 5, command: "claude" }, env))
        )
      )
    )

  it("a missing key says which variable, and that it belongs in the daemon's environment", async () => {
    const failed = await ask({}, "http://127.0.0.1:9")
    expect(failed.reason).toBe("unset")
    expect(failed.message).toMatch(/^the environment variable ARGUS_KEY \(the API key, argus\.llm\.apiKeyEnv\) is not set in the daemon's environment/)
  })

  it("an HTTP error names the URL it was posted to (a base URL ending in /v1 is the usual mistake)", async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ type: "error", error: { type: "not_found_error", message: `no ${req.url}` } }))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
      const failed = await ask({ ARGUS_KEY: "sk-secret-key" }, base)
      expect(failed.reason).toBe("down")
      expect(failed.message).toContain(`HTTP 404 from POST ${base}/v1/messages: `)
      expect(failed.message).not.toContain("sk-secret-key")
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
