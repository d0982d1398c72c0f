import { Effect } from "effect"
import type { DecideInput, DecideOutput } from "../../machines/argus.machine.js"
import { decideByRules } from "../../machines/argus.rules.js"
import { ArgusAdvisor } from "./ArgusAdvisor.js"
import { argusPrompt, findings, parseAnswer } from "./llmContract.js"

/**
 * The LLM decider: the model is asked only when something in the observations calls for judgement, and
 * its answer is advice (the allowlist judges every action it proposes). When it is down, slow or answers
 * nonsense, the rules decide instead, and the cycle says so.
 */
export const decideWithAdvisor = (input: DecideInput): Effect.Effect<DecideOutput, never, ArgusAdvisor> =>
  Effect.gen(function* () {
    const advisor = yield* ArgusAdvisor
    const byRules = (decider: string, rejected: ReadonlyArray<string> = []): DecideOutput => ({
      actions: decideByRules(input.observations, input.policy, input.memory),
      source: "rules",
      decider,
      ...(rejected.length === 0 ? {} : { rejected })
    })
    if (advisor.describe === null) return byRules("rules")
    if (findings(input.observations).length === 0) return byRules("rules: all observations normal, the LLM was not asked")
    const answer = yield* Effect.either(advisor.ask(argusPrompt(input.observations, input.policy, input.memory)))
    if (answer._tag === "Left") return byRules(`rules: the LLM ${answer.left.reason === "slow" ? "was too slow" : "failed"} (${answer.left.detail})`)
    const parsed = parseAnswer(answer.right)
    if (!parsed.ok) return byRules(`rules: the LLM's answer was refused (${parsed.why})`, [`the LLM's answer: ${parsed.why}; the rules decided instead`])
    return {
      actions: parsed.actions,
      source: "llm",
      decider: `llm: ${advisor.describe}`,
      ...(parsed.assessment === null ? {} : { assessment: parsed.assessment }),
      ...(parsed.rejected.length === 0 ? {} : { rejected: parsed.rejected })
    }
  })
