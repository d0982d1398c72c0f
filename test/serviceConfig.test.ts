import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfigSync } from "../src/config/loadConfig.js"

const load = (doc: unknown) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "warden-svc-config-")), "warden.json")
  fs.writeFileSync(file, JSON.stringify(doc))
  return loadConfigSync({ config: file, env: {} })
}
const refusal = (doc: unknown): string => {
  const loaded = load(doc)
  if (Either.isRight(loaded)) throw new Error("expected the config to be refused")
  return loaded.left.message
}

describe("services in the config", () => {
  it("a process service and a systemd service decode with their defaults", () => {
    const config = Either.getOrThrow(
      load({
        services: {
          web: { command: "node", args: ["server.js"], health: { http: "http://127.0.0.1:8080/health", bodyPattern: "ok" } },
          gateway: { mode: "systemd", unit: "openclaw-gateway.service", health: { tcp: 18500 } }
        }
      })
    )
    expect(config.services.web).toMatchObject({
      mode: "process",
      command: "node",
      detach: false,
      stopGraceMs: 5_000,
      preventRestartExitCodes: [],
      restart: { backoffInitialMs: 1_000, backoffFactor: 2, backoffMaxMs: 60_000, maxRestarts: 5, withinSeconds: 60, healthyResetMs: 30_000 },
      health: { expectStatus: 200, intervalSeconds: 10, timeoutSeconds: 3, unhealthyAfter: 3 }
    })
    expect(config.services.gateway).toMatchObject({ mode: "systemd", unit: "openclaw-gateway.service", health: { tcp: 18500 } })
  })

  it("refuses what cannot be supervised, naming the service and what is wrong", () => {
    expect(refusal({ services: { web: { args: ["x"] } } })).toMatch(/services\.web.*a process service needs its command/s)
    expect(refusal({ services: { gw: { mode: "systemd" } } })).toMatch(/services\.gw.*a systemd service needs its unit/s)
    expect(refusal({ services: { gw: { mode: "systemd", unit: "x.service; rm -rf /" } } })).toMatch(/a unit name such as/)
    expect(refusal({ services: { web: { command: "node", health: { http: "http://x", tcp: 80 } } } })).toMatch(/exactly one of http and tcp/)
    expect(refusal({ services: { web: { command: "node", health: { http: "file:///etc/passwd" } } } })).toMatch(/an http:\/\/ or https:\/\/ URL/)
    expect(refusal({ services: { "Web Server": { command: "node" } } })).toMatch(/services\.Web Server: is unexpected, expected: a string matching the pattern/)
    expect(refusal({ services: { web: { command: "node", health: { tcp: 80, bodyPattern: "(" } } } })).toMatch(/not a valid regular expression/)
  })

  it("the example in config/ (the seed's two services in systemd mode) decodes", () => {
    const example = path.resolve(new URL("..", import.meta.url).pathname, "config", "services.example.json")
    const loaded = loadConfigSync({ config: example, env: {} })
    const config = Either.getOrThrow(loaded)
    expect(config.services["openclaw-gateway"]).toMatchObject({ mode: "systemd", unit: "openclaw-gateway.service", health: { tcp: 18500 } })
    expect(config.services["mcp-agent-mail"]).toMatchObject({ mode: "systemd", unit: "mcp-agent-mail.service", health: { tcp: 8765 } })
  })
})
