import { Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { findTemplate, renderTemplate, TemplateError, templateNames, type TemplateVars } from "../src/templates/render.js"

const builtin = fileURLToPath(new URL("../templates", import.meta.url))

const vars: TemplateVars = {
  bead: "bd-42",
  title: "Add a greeting",
  description: "Write hello.txt containing a greeting.",
  repo: "/tmp/some-repo",
  acceptance: "hello.txt exists and is committed",
  attempt_id: "att-0001",
  status_file: "/tmp/ws/state/watch/bd-42.status.json"
}

let workspace: string

beforeEach(() => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), "warden-templates-"))
})

afterEach(() => {
  fs.rmSync(workspace, { recursive: true, force: true })
})

const render = (name: string) => renderTemplate(name, vars, { workspace, builtin })

const expectError = (name: string): TemplateError => {
  const result = render(name)
  if (Either.isRight(result)) throw new Error(`expected an error, got:\n${result.right.text}`)
  expect(result.left).toBeInstanceOf(TemplateError)
  expect(result.left._tag).toBe("TemplateError")
  return result.left
}

describe("shipped templates", () => {
  it("ships the seven templates", () => {
    expect([...templateNames].sort()).toEqual(
      ["bug-fix", "code-review", "custom", "docs", "feature", "refactor", "script"]
    )
  })

  for (const name of templateNames) {
    it(`${name} renders with all variables and leaves no placeholders`, () => {
      const result = render(name)
      if (Either.isLeft(result)) throw new Error(result.left.message)
      const { text, file } = result.right
      expect(file).toBe(path.join(builtin, `${name}.md`))
      expect(text).not.toContain("{{")
      expect(text).not.toContain("}}")
      expect(text).toContain(vars.description)
      expect(text).toContain(vars.bead)
      expect(text).toContain("warden signal --status done")
      expect(text).toContain("--status failed")
      expect(text).toContain(vars.status_file)
      expect(text).toContain(`"attempt_id":"${vars.attempt_id}"`)
      if (name !== "custom") {
        expect(text).toContain(vars.title)
        expect(text).toContain(vars.acceptance)
      }
    })
  }
})

describe("renderTemplate", () => {
  it("prefers a workspace override over the built-in template", () => {
    fs.writeFileSync(path.join(workspace, "feature.md"), "Override for {{ bead }} in {{repo}}: {{title}}\n")
    expect(findTemplate("feature", { workspace, builtin })).toEqual({
      file: path.join(workspace, "feature.md"),
      source: "workspace"
    })
    const result = render("feature")
    expect(Either.isRight(result) && result.right).toEqual({
      text: "Override for bd-42 in /tmp/some-repo: Add a greeting\n",
      file: path.join(workspace, "feature.md")
    })
    expect(findTemplate("bug-fix", { workspace, builtin })?.source).toBe("builtin")
  })

  it("does not re-scan substituted values", () => {
    fs.writeFileSync(path.join(workspace, "custom.md"), "{{description}}")
    const result = renderTemplate("custom", { ...vars, description: "literal {{title}}" }, { workspace, builtin })
    expect(Either.isRight(result) && result.right.text).toBe("literal {{title}}")
  })

  it("names an unknown variable and its line", () => {
    fs.writeFileSync(path.join(workspace, "custom.md"), "line one {{bead}}\nline two {{ nosuchvar }}\n")
    const error = expectError("custom")
    expect(error.template).toBe("custom")
    expect(error.message).toContain("nosuchvar")
    expect(error.message).toContain(":2")
  })

  it("rejects an unterminated placeholder", () => {
    fs.writeFileSync(path.join(workspace, "custom.md"), "ok {{bead}}\n\nbroken {{title\n")
    const error = expectError("custom")
    expect(error.message).toContain("unterminated")
    expect(error.message).toContain(":3")
  })

  it("rejects an invalid variable name", () => {
    fs.writeFileSync(path.join(workspace, "custom.md"), "{{ not a name }}")
    expect(expectError("custom").message).toContain("invalid variable name")
  })

  it("rejects template names that could escape the template dirs", () => {
    fs.writeFileSync(path.join(path.dirname(workspace), "x.md"), "escaped")
    for (const name of ["../x", "a/b", "..", "", "Feature", "-x", "x.md"]) {
      const error = expectError(name)
      expect(error.template).toBe(name)
      expect(error.message).toContain("invalid template name")
    }
    expect(findTemplate("../x", { workspace, builtin })).toBeNull()
  })

  it("reports a missing template", () => {
    const error = expectError("no-such-template")
    expect(error.template).toBe("no-such-template")
    expect(error.message).toContain("not found")
  })
})
