import * as fs from "node:fs"
import * as path from "node:path"
import type { Browser, BrowserContext, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, screenshot } from "./support/browser.js"
import { demoServiceScript, eventually, exited, freePort, makeWorkspace } from "./support/workspace.js"

/**
 * The dashboard in a real headless Chromium, against the built daemon, at a phone's width and a
 * desktop's: logging in with the one-time URL, dispatching from the form and watching the row move,
 * the live terminal and the statechart, taking control to answer the agent, cancelling, a service's
 * restart arriving live, and replaying a finished session. Each view is saved as a screenshot.
 */
const PHONE = { width: 375, height: 812 }
const DESKTOP = { width: 1280, height: 800 }

const servicePort = await freePort()
const ws = makeWorkspace({
  services: {
    web: {
      command: process.execPath,
      args: [demoServiceScript, String(servicePort)],
      restart: { backoffInitialMs: 200, backoffFactor: 2, backoffMaxMs: 1_000, maxRestarts: 5, withinSeconds: 60 },
      stopGraceMs: 1_000
    }
  }
})
const repo = ws.makeRepo("repo")

/**
 * The agent asks before it goes on; its answer goes to answer.txt in its repo. It then says it is done and
 * stays (the session ends it): the marker is then the only sign of completion, never a race with its exit.
 */
const ASKER = `echo agent-says-hello; printf 'Proceed? [y/n] '; IFS= read -r x; echo "answer=$x" > answer.txt; echo WARDEN_DONE; sleep 60`

let daemon: Awaited<ReturnType<typeof ws.startDaemon>> | null = null
let browser: Browser | null = null
const contexts: BrowserContext[] = []
/** What each page reported that it should not have: uncaught errors and console errors (a CSP refusal is one). */
const problems: string[] = []

/** A logged-in page at this size: a one-time URL from `warden dashboard --json`, opened in a fresh context. */
const loggedIn = async (viewport: { width: number; height: number }): Promise<Page> => {
  const answer = await ws.warden("dashboard", "--json")
  expect(answer.status, answer.stderr).toBe(0)
  const { url } = JSON.parse(answer.stdout) as { url: string }
  const context = await browser!.newContext({ viewport })
  contexts.push(context)
  const page = await context.newPage()
  page.on("pageerror", (error) => problems.push(`${viewport.width}: ${error.message}`))
  page.on("console", (message) => {
    // The dispatch this file has refused on purpose, and the beads it asks for that are unknown or invalid, are the errors a page may log.
    const onPurpose = message.text().includes("status of 422") || /\/v1\/sessions\/(bd-nope|bad%20id)(\/|$)/.test(message.location().url)
    if (message.type() === "error" && !onPurpose) problems.push(`${viewport.width}: ${message.text()}`)
  })
  await page.goto(url)
  await page.waitForURL(`${daemon!.base}/`)
  await page.locator('[data-live="yes"]').waitFor()
  return page
}

const row = (page: Page, bead: string) => page.locator(`li.row[data-bead="${bead}"]`)

const dispatchFromForm = async (page: Page, bead: string, command: string) => {
  await page.goto(`${daemon!.base}/#/sessions`)
  await page.locator("details.dispatch summary").click()
  await page.fill('input[name="bead"]', bead)
  await page.fill('input[name="repo"]', repo)
  // The daemon's profiles and templates are offered as the fields' suggestions.
  await page.locator('#dispatch-profiles option[value="shell"]').waitFor({ state: "attached" })
  expect(await page.locator("#dispatch-templates option").evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value))).toContain("feature")
  await page.fill('input[name="agent"]', "shell")
  await page.fill('textarea[name="prompt"]', "answer the question")
  await page.fill('input[name="command"]', command)
  await page.click('button[type="submit"]')
}

/** Records every state a bead's row shows, from now on, without reloading the page. */
const watchRowStates = (page: Page, bead: string) =>
  page.evaluate((bead) => {
    const seen: string[] = []
    ;(window as any).__rowStates = seen
    const note = () => {
      const state = document.querySelector(`li.row[data-bead="${bead}"]`)?.getAttribute("data-state")
      if (state && seen[seen.length - 1] !== state) seen.push(state)
    }
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] })
    note()
  }, bead)

const rowStates = (page: Page): Promise<string[]> => page.evaluate(() => (window as any).__rowStates as string[])

const terminalText = (page: Page) => page.locator(".tty .xterm-rows").innerText()

/** Why Chromium could not be started: the first test fails with it, and every other test fails too (none is skipped). */
let launchProblem: unknown = null

beforeAll(async () => {
  try {
    browser = await launchChromium()
  } catch (error) {
    launchProblem = error
    return
  }
  daemon = await ws.startDaemon()
}, 30_000)

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
  if (daemon !== null) {
    daemon.child.kill("SIGTERM")
    await exited(daemon.child)
  }
  ws.cleanup()
}, 30_000)

describe("the dashboard in Chromium", () => {
  it("has Debian's Chromium to drive", () => {
    if (launchProblem !== null) throw launchProblem
  })

  it("shows nothing without the cookie: only the 401 page", async () => {
    const context = await browser!.newContext({ viewport: PHONE })
    contexts.push(context)
    const page = await context.newPage()
    const answer = await page.goto(`${daemon!.base}/`)
    expect(answer?.status()).toBe(401)
    expect(await page.locator("h1").innerText()).toBe("Not logged in")
    expect(await page.locator("#app").count()).toBe(0)
    expect((await page.goto(`${daemon!.base}/assets/app.js`))?.status()).toBe(401)
  })

  let phone: Page
  let desktop: Page

  it("logs in with the one-time URL at both widths, with a manifest Chromium accepts", async () => {
    phone = await loggedIn(PHONE)
    desktop = await loggedIn(DESKTOP)
    expect(new URL(phone.url()).search).toBe("")
    const cdp = await phone.context().newCDPSession(phone)
    const manifest = (await cdp.send("Page.getAppManifest")) as { url: string; errors: unknown[] }
    expect(manifest.url).toBe(`${daemon!.base}/manifest.webmanifest`)
    expect(manifest.errors).toEqual([])
    // One column at a phone's width: nothing wider than the screen.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width)
  })

  it("fits the header at both widths: the title shown, Log out on one line, every tab on the screen", async () => {
    for (const page of [phone, desktop]) {
      const header = await page.evaluate(() => {
        const logout = document.querySelector<HTMLElement>(".top button")!
        const text = document.createRange()
        text.selectNodeContents(logout)
        return {
          brand: document.querySelector(".top .brand")!.getBoundingClientRect().width,
          logout: logout.innerText,
          logoutLines: new Set([...text.getClientRects()].map((r) => Math.round(r.top))).size,
          right: Math.max(...[...document.querySelectorAll(".top > *, .top nav a")].map((e) => e.getBoundingClientRect().right)),
          tabs: [...document.querySelectorAll<HTMLElement>(".top nav a")].map((a) => a.innerText)
        }
      })
      const width = page.viewportSize()!.width
      expect(header.brand, `the title at ${width} px`).toBeGreaterThan(0)
      expect(header.logout).toBe("Log out")
      expect(header.logoutLines, `Log out's lines at ${width} px`).toBe(1)
      expect(header.right).toBeLessThanOrEqual(width)
      expect(header.tabs).toEqual(["Sessions", "Services", "History"])
    }
    await screenshot(phone, "header")
  })

  it("says once, on a used login link's page, that a link works once", async () => {
    const answer = await ws.warden("dashboard", "--json")
    const { url } = JSON.parse(answer.stdout) as { url: string }
    const context = await browser!.newContext({ viewport: PHONE })
    contexts.push(context)
    const page = await context.newPage()
    await page.goto(url)
    await page.waitForURL(`${daemon!.base}/`)
    expect((await page.goto(url))?.status()).toBe(401)
    const text = await page.locator("body").innerText()
    expect(text).toContain("This login link was already used.")
    expect(text.match(/works once/g), text).toHaveLength(1)
    await context.close()
  })

  it("dispatches from the form and the row moves through the states live", async () => {
    await desktop.goto(`${daemon!.base}/#/sessions`)
    await watchRowStates(desktop, "bd-web1")
    await dispatchFromForm(phone, "bd-web1", ASKER)
    await row(phone, "bd-web1").waitFor()
    await desktop.locator('li.row[data-bead="bd-web1"][data-state="running.waitingInput"]').waitFor({ timeout: 20_000 })
    const states = await rowStates(desktop)
    expect(states.length).toBeGreaterThanOrEqual(2)
    expect(states.at(-1)).toBe("running.waitingInput")
    expect(states.some((s) => s === "running.working" || s === "launching" || s === "preflight" || s === "queued")).toBe(true)
    await screenshot(phone, "sessions")
    await screenshot(desktop, "sessions")
  }, 30_000)

  it("shows the API's refusal of a dispatch, and drains from the page", async () => {
    await phone.fill('input[name="bead"]', "bd-refused")
    await phone.fill('input[name="agent"]', "no-such-profile")
    await phone.click('button[type="submit"]')
    const refusal = await phone.locator('.dispatch [role="alert"]').innerText()
    expect(refusal).toMatch(/^422: .*no-such-profile/)
    expect(await row(phone, "bd-refused").count()).toBe(0)
    await phone.click('[data-action="drain"]')
    await desktop.locator('[data-action="drain"][aria-pressed="true"]').waitFor()
    expect((await (await fetch(`${daemon!.base}/healthz`)).json()).draining).toBe(true)
    await desktop.click('[data-action="drain"]')
    await phone.locator('[data-action="drain"][aria-pressed="false"]').waitFor()
    expect((await (await fetch(`${daemon!.base}/healthz`)).json()).draining).toBe(false)
  })

  it("shows the session's live terminal and its statechart lit, and the phone takes control to answer the agent", async () => {
    await desktop.click('li.row[data-bead="bd-web1"] a.button')
    await phone.click('li.row[data-bead="bd-web1"] a.button')
    for (const page of [phone, desktop]) {
      await page
        .waitForFunction(() => document.querySelector(".tty .xterm-rows")?.textContent?.includes("Proceed? [y/n]"), undefined, { timeout: 10_000 })
        .catch(async () => {
          throw new Error(`the terminal does not show the question; it shows: ${await terminalText(page)}`)
        })
      await page.locator('g.state.lit[data-state="agentSession.running.waitingInput"]').waitFor()
    }
    expect(await terminalText(phone)).toContain("agent-says-hello")
    // Lit: the state and its compound parents; the machine's root box (always active) is not.
    const lit = await phone.locator("g.state.lit").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-state")).sort())
    expect(lit).toEqual(["agentSession.running", "agentSession.running.waitingInput"])
    await screenshot(phone, "session")
    await screenshot(desktop, "session")
    // Read-only until control is taken: a key typed now is not sent.
    await phone.locator(".tty").click()
    await phone.keyboard.type("n")
    // The desktop follows the rest at full size: the marks move there live too.
    await desktop.click('[data-action="full-size"]')
    await phone.click("text=Take control")
    await phone.locator(".banner.mine").waitFor()
    await desktop.locator(".terminal-panel .banner", { hasText: "Another viewer" }).waitFor()
    expect(await desktop.locator("text=Take control").isDisabled()).toBe(true)
    await phone.locator(".tty").click()
    await phone.keyboard.type("y")
    await phone.keyboard.press("Enter")
    const answerFile = path.join(repo, "answer.txt")
    expect(await eventually(() => fs.existsSync(answerFile) && fs.readFileSync(answerFile, "utf8"), 10_000, "the agent's answer")).toBe("answer=y\n")
    await phone.locator('[data-view="session"] [data-field="state"]', { hasText: /^done$/ }).waitFor({ timeout: 20_000 })
    await desktop.locator('.statechart.full g.state.lit[data-state="agentSession.done"]').waitFor()
  }, 40_000)

  it("shows the statechart at full size on demand, scrolled to the lit state", async () => {
    for (const page of [phone, desktop]) {
      // A fresh view (the desktop left its chart at full size in the test before).
      await page.goto(`${daemon!.base}/#/sessions`)
      await page.goto(`${daemon!.base}/#/sessions/bd-web1`)
      await page.locator('.statechart[data-marked="live"] g.state.lit[data-state="agentSession.done"]').waitFor()
      const width = page.viewportSize()!.width
      // Fitted by default: no wider than its box.
      expect(await page.locator(".statechart").evaluate((box) => box.scrollWidth <= box.clientWidth + 1)).toBe(true)
      await page.click('[data-action="full-size"]')
      const shown = await page.locator(".statechart.full").evaluate((box) => {
        const svg = box.querySelector("svg")!
        const frame = box.getBoundingClientRect()
        const lit = box.querySelector('g.state.lit[data-state="agentSession.done"]')!.getBoundingClientRect()
        return {
          natural: Number(svg.getAttribute("width")),
          drawn: svg.getBoundingClientRect().width,
          scrolls: box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight,
          frame: [frame.left, frame.top, frame.right, frame.bottom], lit: [lit.left, lit.top, lit.right, lit.bottom],
          litInView: lit.left >= frame.left && lit.right <= frame.right && lit.top >= frame.top && lit.bottom <= frame.bottom
        }
      })
      expect(Math.abs(shown.drawn - shown.natural), `the SVG at its own width at ${width} px`).toBeLessThanOrEqual(1)
      expect(shown.scrolls).toBe(true)
      expect(shown.litInView, `the lit state in the box at ${width} px: ${JSON.stringify(shown)}`).toBe(true)
      await screenshot(page, "statechart-full")
      await page.click('[data-action="full-size"]')
      await page.locator(".statechart:not(.full)").waitFor()
    }
  }, 20_000)

  it("clears a view's error banner when the operator leaves that view", async () => {
    await phone.goto(`${daemon!.base}/#/sessions/bad%20id`)
    await phone.locator(".errors", { hasText: "400: invalid bead id" }).waitFor({ timeout: 5_000 })
    for (const tab of ["#/services", "#/history", "#/sessions"]) {
      await phone.click(`.top a.tab[href="${tab}"]`)
      await phone.locator(`.top a.tab.current[href="${tab}"]`).waitFor()
      expect(await phone.locator(".errors").count(), `a banner on ${tab}`).toBe(0)
    }
  })

  it("shows an unknown bead as unknown: no controls, no terminal, no statechart, no websocket", async () => {
    const sockets: string[] = []
    phone.on("websocket", (socket) => sockets.push(socket.url()))
    await phone.goto(`${daemon!.base}/#/sessions/bd-nope`)
    await phone.locator('[data-view="session"]', { hasText: "No bead bd-nope in this workspace" }).waitFor({ timeout: 5_000 })
    const view = phone.locator('[data-view="session"]')
    expect(await view.locator("button").count()).toBe(0)
    expect(await phone.locator(".terminal-panel, .statechart").count()).toBe(0)
    expect(await view.locator('a[href="#/sessions"]').count()).toBe(1)
    expect(await phone.locator(".errors").count()).toBe(0)
    expect(sockets).toEqual([])
    await screenshot(phone, "unknown-bead")
    await phone.click('[data-view="session"] a[href="#/sessions"]')
    await phone.locator('[data-view="sessions"]').waitFor()
  })

  it("cancels a running session from the page", async () => {
    await dispatchFromForm(desktop, "bd-web2", "echo waiting-forever; sleep 300")
    await desktop.locator('li.row[data-bead="bd-web2"][data-state^="running"]').waitFor({ timeout: 20_000 })
    await desktop.click('li.row[data-bead="bd-web2"] button.danger')
    await desktop.locator('li.row[data-bead="bd-web2"][data-state="cancelled"]').waitFor({ timeout: 15_000 })
    expect(await desktop.locator('li.row[data-bead="bd-web2"] [data-field="result"]').innerText()).toBe("cancelled")
  }, 30_000)

  it("shows a service's restart without reloading", async () => {
    for (const page of [phone, desktop]) {
      await page.goto(`${daemon!.base}/#/services`)
      await page.locator('li.row[data-service="web"][data-state^="running"]').waitFor({ timeout: 15_000 })
    }
    const before = Number(await desktop.locator('li.row[data-service="web"] [data-field="restarts"]').innerText())
    await desktop.evaluate(() => ((window as any).__sameDocument = true))
    const crashed = await fetch(`http://127.0.0.1:${servicePort}/crash`, { method: "POST" })
    expect(crashed.ok).toBe(true)
    await desktop.locator('li.row[data-service="web"] [data-field="restarts"]', { hasText: String(before + 1) }).waitFor({ timeout: 15_000 })
    await desktop.locator('li.row[data-service="web"][data-state^="running"]').waitFor({ timeout: 15_000 })
    expect(await desktop.locator('li.row[data-service="web"] [data-field="last-exit"]').innerText()).toBe("exit 1")
    expect(await desktop.evaluate(() => (window as any).__sameDocument)).toBe(true)
    await screenshot(phone, "services")
    await screenshot(desktop, "services")
  }, 30_000)

  it("replays a finished session step by step, the statechart lit at each step", async () => {
    for (const page of [phone, desktop]) {
      await page.goto(`${daemon!.base}/#/sessions/bd-web1`)
      await page.click('[data-action="replay"]')
      await page.locator('.statechart[data-marked="step 1"]').waitFor()
      const litAt = () => page.locator("g.state.lit").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-state")).sort().join(" "))
      const first = await litAt()
      await page.click('button[aria-label="step forward"]')
      await page.locator('.statechart[data-marked="step 2"]').waitFor()
      const second = await litAt()
      expect(second).not.toBe(first)
      expect(await page.locator(".step-event").innerText()).toMatch(/attempt 1: .+ → agentSession\./)
      await page.click('button[aria-label="step back"]')
      await page.locator('.statechart[data-marked="step 1"]').waitFor()
      expect(await litAt()).toBe(first)
      // Forward to the last step (done); on the way, the step that decided it, with its evidence.
      const total = Number((await page.locator('[data-field="step"]').innerText()).split(" of ")[1])
      const told: string[] = []
      for (let n = 2; n <= total; n++) {
        await page.click('button[aria-label="step forward"]')
        await page.locator(`.statechart[data-marked="step ${n}"]`).waitFor()
        told.push(await page.locator(".replay").innerText())
      }
      expect(await litAt()).toContain("agentSession.done")
      const decided = told.find((text) => /completion: done by /.test(text))
      expect(decided, told.join("\n----\n")).toBeDefined()
      expect(decided).toContain("WARDEN_DONE")
      // The records, as `warden show --json` gives them.
      await page.click('[data-panel="records"] summary')
      expect(JSON.parse(await page.locator('[data-panel="records"] pre').innerText())).toMatchObject({ bead: "bd-web1", lifecycle_state: "done" })
      await screenshot(page, "replay")
    }
  }, 30_000)

  it("shows the history of runs with charts, and the day's memory notes", async () => {
    for (const page of [phone, desktop]) {
      await page.goto(`${daemon!.base}/#/history`)
      await page.locator('[data-view="history"] li.row[data-bead="bd-web1"]').waitFor()
      expect(await page.locator("figure.chart svg").count()).toBeGreaterThanOrEqual(2)
      await page.locator("pre.memory", { hasText: "bd-web1" }).waitFor()
      // A run says how it ended in Warden's words (the seed's status would call a cancelled run failed).
      expect(await page.locator('[data-view="history"] li.row[data-bead="bd-web2"] .state').innerText()).toBe("cancelled")
      // Every chart's labels and values whole: inside their chart, none cut inside its own box.
      const clipped = await page.locator("figure.chart").evaluateAll((figures) =>
        figures.flatMap((figure) => {
          const style = getComputedStyle(figure)
          const outer = figure.getBoundingClientRect()
          const left = outer.left + figure.clientLeft + parseFloat(style.paddingLeft)
          const right = outer.left + figure.clientLeft + figure.clientWidth - parseFloat(style.paddingRight)
          return [...figure.querySelectorAll(".chart-label, .chart-value")]
            .filter((text) => {
              const box = text.getBoundingClientRect()
              return box.left < left - 0.5 || box.right > right + 0.5 || text.scrollWidth > Math.ceil(box.width)
            })
            .map((text) => `${figure.querySelector("figcaption")?.textContent}: ${text.textContent}`)
        })
      )
      expect(clipped, `clipped at ${page.viewportSize()!.width} px`).toEqual([])
      await screenshot(page, "history")
    }
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width)
    expect(problems).toEqual([])
  }, 20_000)
})
