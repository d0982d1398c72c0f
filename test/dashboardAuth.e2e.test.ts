import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import WebSocket from "ws"
import { exited, makeWorkspace, useDaemon } from "./support/workspace.js"

/** The dashboard's login, its cookie sessions and the cross-site protections, against the built daemon. */
const ws = makeWorkspace()
const daemon = useDaemon(ws)

/** Every login code this file was given, to look for in the daemon's files at the end. */
const issuedCodes: string[] = []

interface Answer {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** A request with exactly these headers (fetch would add or drop some: Origin, Cookie). */
const raw = (method: string, route: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const request = http.request(`${daemon.base}${route}`, { method, headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) } }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (text += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }))
    })
    request.on("error", reject)
    request.end(body)
  })

const ownOrigin = () => daemon.base

/** A one-time login URL, asked with the token. */
const loginUrl = async (): Promise<string> => {
  const answer = await daemon.api("POST", "/v1/dashboard/login", {})
  expect(answer.status).toBe(200)
  const url = String(answer.json.url)
  issuedCodes.push(new URL(url).searchParams.get("code")!)
  return url
}

/** Opens a login URL; the session cookie's `name=value`. */
const login = async (): Promise<string> => {
  const url = new URL(await loginUrl())
  const answer = await raw("GET", `${url.pathname}${url.search}`)
  expect(answer.status).toBe(200)
  const cookie = (answer.headers["set-cookie"] ?? [])[0] ?? ""
  return cookie.split(";")[0]!
}

/** The session's CSRF token, as the page gets it. */
const csrfOf = async (cookie: string): Promise<string> => {
  const answer = await raw("GET", "/v1/dashboard/session", { cookie })
  expect(answer.status).toBe(200)
  return JSON.parse(answer.body).csrf as string
}

/** Opens the feed's websocket with these headers; the first message, or the refusal's status. */
const openFeed = (headers: Record<string, string>): Promise<{ opened: true; first: any } | { opened: false; status: number }> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(`${daemon.base.replace("http:", "ws:")}/v1/feed`, { headers })
    socket.on("message", (data) => {
      resolve({ opened: true, first: JSON.parse(data.toString()) })
      socket.close()
    })
    socket.on("unexpected-response", (_request, response) => {
      resolve({ opened: false, status: response.statusCode ?? 0 })
      response.resume()
    })
    socket.on("error", reject)
  })

describe("the dashboard's login", () => {
  it("a one-time URL sets an HttpOnly, SameSite=Strict cookie with a page that navigates itself (no redirect, no cache, no referrer)", async () => {
    const url = new URL(await loginUrl())
    expect(url.origin).toBe(ownOrigin())
    expect(url.pathname).toBe("/login")
    expect(url.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const answer = await raw("GET", `${url.pathname}${url.search}`)
    expect(answer.status).toBe(200)
    expect(answer.headers.location).toBeUndefined()
    expect(answer.headers["set-cookie"]).toHaveLength(1)
    expect(answer.headers["set-cookie"]![0]).toMatch(/^warden_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/)
    expect(answer.headers["cache-control"]).toBe("no-store")
    expect(answer.headers["referrer-policy"]).toBe("no-referrer")
    expect(answer.body).toContain('<script>location.replace("/")</script>')
    // The page's CSP lets that one script run (by its hash), and nothing else.
    const hash = createHash("sha256").update('location.replace("/")').digest("base64")
    expect(answer.headers["content-security-policy"]).toContain(`script-src 'sha256-${hash}'`)
    expect(answer.headers["content-security-policy"]).toContain("default-src 'none'")
  })

  it("the cookie opens the page, reads /v1/sessions and opens the feed's websocket", async () => {
    const cookie = await login()
    const page = await raw("GET", "/", { cookie })
    expect(page.status).toBe(200)
    expect(page.body).toContain('<link rel="manifest" href="/manifest.webmanifest">')
    expect(page.headers["content-security-policy"]).toContain("default-src 'self'")
    expect(page.headers["x-content-type-options"]).toBe("nosniff")
    expect(page.headers["x-frame-options"]).toBe("DENY")
    const sessions = await raw("GET", "/v1/sessions", { cookie })
    expect(sessions.status).toBe(200)
    expect(JSON.parse(sessions.body)).toHaveProperty("sessions")
    const feed = await openFeed({ cookie, origin: ownOrigin() })
    expect(feed).toMatchObject({ opened: true, first: { type: "hello" } })
    // The page's own origin under its other name is accepted too, without --allow-origin.
    const session = await raw("GET", "/v1/dashboard/session", { cookie, origin: ownOrigin().replace("127.0.0.1", "localhost") })
    expect(session.status).toBe(200)
    expect(JSON.parse(session.body)).toMatchObject({ csrf: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), expires_at: expect.any(String) })
  })

  it("a login code works once: its second use is a 401 page that says how to get a new one, with no cookie", async () => {
    const url = new URL(await loginUrl())
    // A HEAD (a link checker's) does not use the code up.
    expect((await raw("HEAD", `${url.pathname}${url.search}`)).status).toBe(405)
    expect((await raw("GET", `${url.pathname}${url.search}`)).status).toBe(200)
    const again = await raw("GET", `${url.pathname}${url.search}`)
    expect(again.status).toBe(401)
    expect(again.headers["set-cookie"]).toBeUndefined()
    expect(again.body).toContain("already used")
    expect(again.body).toContain("warden dashboard")
    const unknown = await raw("GET", "/login?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    expect(unknown.status).toBe(401)
    expect((await raw("GET", "/login")).status).toBe(401)
  })

  it("a login code is for the token's holder: a session cannot make one", async () => {
    const cookie = await login()
    const csrf = await csrfOf(cookie)
    const answer = await raw("POST", "/v1/dashboard/login", { cookie, origin: ownOrigin(), "x-warden-csrf": csrf }, "{}")
    expect(answer.status).toBe(401)
  })

  it("without the cookie or the token, the page, the API and the feed show nothing", async () => {
    for (const headers of [{}, { cookie: "warden_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }]) {
      const page = await raw("GET", "/", headers)
      expect(page.status).toBe(401)
      expect(page.body).toContain("warden dashboard")
      expect(page.body).not.toContain("manifest")
      expect(page.body).not.toContain("<script")
      const sessions = await raw("GET", "/v1/sessions", headers)
      expect(sessions.status).toBe(401)
      expect(Object.keys(JSON.parse(sessions.body)).sort()).toEqual(["_tag", "error", "reason"])
      expect(await openFeed({ ...headers, origin: ownOrigin() })).toEqual({ opened: false, status: 401 })
      expect((await raw("GET", "/assets/app.js", headers)).status).toBe(401)
    }
  })

  it("the manifest and its icons are served without auth", async () => {
    const manifest = await raw("GET", "/manifest.webmanifest")
    expect(manifest.status).toBe(200)
    expect(manifest.headers["content-type"]).toBe("application/manifest+json")
    const parsed = JSON.parse(manifest.body)
    expect(parsed).toMatchObject({ name: "Warden", start_url: "/" })
    for (const icon of parsed.icons as Array<{ src: string }>) {
      const answer = await raw("GET", icon.src)
      expect(answer.status).toBe(200)
      expect(answer.headers["content-type"]).toBe("image/svg+xml")
    }
    expect((await raw("GET", "/icons/..%2Fmanifest.webmanifest")).status).toBe(404)
  })
})

describe("cross-site protection of the cookie", () => {
  it("a cookie POST from another site, or without the session's CSRF header, is refused (403); from the page with it, it is done", async () => {
    const cookie = await login()
    const csrf = await csrfOf(cookie)
    const body = JSON.stringify({ on: false })
    const evil = await raw("POST", "/v1/drain", { cookie, origin: "http://evil.example", "x-warden-csrf": csrf }, body)
    expect(evil.status).toBe(403)
    const noCsrf = await raw("POST", "/v1/drain", { cookie, origin: ownOrigin() }, body)
    expect(noCsrf.status).toBe(403)
    expect(JSON.parse(noCsrf.body)).toMatchObject({ _tag: "CrossSiteRefused", reason: "csrf" })
    const wrongCsrf = await raw("POST", "/v1/drain", { cookie, origin: ownOrigin(), "x-warden-csrf": "x".repeat(43) }, body)
    expect(wrongCsrf.status).toBe(403)
    // Neither Origin nor Sec-Fetch-Site nor Referer: nothing shows the request comes from the page.
    const unknown = await raw("POST", "/v1/drain", { cookie, "x-warden-csrf": csrf }, body)
    expect(JSON.parse(unknown.body)).toMatchObject({ _tag: "CrossSiteRefused", reason: "origin" })
    const crossFetch = await raw("POST", "/v1/drain", { cookie, "sec-fetch-site": "cross-site", "x-warden-csrf": csrf }, body)
    expect(crossFetch.status).toBe(403)
    expect((await raw("POST", "/v1/drain", { cookie, origin: ownOrigin(), "x-warden-csrf": csrf }, body)).status).toBe(200)
    expect((await raw("POST", "/v1/drain", { cookie, "sec-fetch-site": "same-origin", "x-warden-csrf": csrf }, body)).status).toBe(200)
    expect((await raw("POST", "/v1/drain", { cookie, referer: `${ownOrigin()}/`, "x-warden-csrf": csrf }, body)).status).toBe(200)
    // The token's path is as it was: no CSRF header needed.
    expect((await raw("POST", "/v1/drain", { authorization: `Bearer ${daemon.token}` }, body)).status).toBe(200)
  })

  it("a cookie websocket upgrade from another site, or that does not say where it comes from, is refused", async () => {
    const cookie = await login()
    expect(await openFeed({ cookie, origin: "http://evil.example" })).toEqual({ opened: false, status: 403 })
    expect(await openFeed({ cookie })).toEqual({ opened: false, status: 403 })
  })

  it("logging out ends the session and clears the cookie; it needs the CSRF header too", async () => {
    const cookie = await login()
    const csrf = await csrfOf(cookie)
    expect((await raw("POST", "/logout", { cookie, origin: ownOrigin() })).status).toBe(403)
    expect((await raw("GET", "/v1/sessions", { cookie })).status).toBe(200)
    const out = await raw("POST", "/logout", { cookie, origin: ownOrigin(), "x-warden-csrf": csrf })
    expect(out.status).toBe(200)
    expect(out.headers["set-cookie"]![0]).toMatch(/^warden_session=; .*Max-Age=0$/)
    expect((await raw("GET", "/v1/sessions", { cookie })).status).toBe(401)
    expect((await raw("GET", "/", { cookie })).status).toBe(401)
    expect(await openFeed({ cookie, origin: ownOrigin() })).toEqual({ opened: false, status: 401 })
  })
})

describe("warden dashboard", () => {
  it("prints a login URL that works, once; --json gives url and expires_at", async () => {
    const printed = await ws.warden("dashboard")
    expect(printed.status).toBe(0)
    const url = /^(http:\/\/127\.0\.0\.1:\d+\/login\?code=[A-Za-z0-9_-]{43})$/m.exec(printed.stdout)?.[1]
    expect(url).toBeDefined()
    expect(printed.stdout).toMatch(/works once, within \d+ s/)
    issuedCodes.push(new URL(url!).searchParams.get("code")!)
    const opened = await fetch(url!, { redirect: "manual" })
    expect(opened.status).toBe(200)
    expect(opened.headers.get("set-cookie")).toMatch(/^warden_session=/)
    const json = await ws.warden("dashboard", "--json")
    expect(json.status).toBe(0)
    const parsed = JSON.parse(json.stdout)
    expect(parsed).toMatchObject({ url: expect.stringContaining("/login?code="), expires_at: expect.any(String) })
    issuedCodes.push(new URL(parsed.url).searchParams.get("code")!)
  })

  it("without a daemon, says so", async () => {
    const other = makeWorkspace()
    try {
      const printed = await other.warden("dashboard")
      expect(printed.status).toBe(1)
      expect(printed.stderr).toContain("no warden daemon runs for this workspace")
    } finally {
      other.cleanup()
      fs.rmSync(other.dir, { recursive: true, force: true })
    }
  })

  it("the login endpoints are in /v1/openapi.json", async () => {
    const openapi = await daemon.api("GET", "/v1/openapi.json")
    expect(Object.keys(openapi.json.paths)).toEqual(expect.arrayContaining(["/v1/dashboard/login", "/v1/dashboard/session"]))
  })
})

describe("the login code's lifetime", () => {
  it("an expired code is refused", async () => {
    const short = makeWorkspace({ dashboard: { loginCodeSeconds: 1 } })
    const started = await short.startDaemon()
    try {
      const answer = await fetch(`${started.base}/v1/dashboard/login`, { method: "POST", headers: { authorization: `Bearer ${started.token}` }, body: "{}" })
      const { url } = (await answer.json()) as { url: string }
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      const late = await fetch(url, { redirect: "manual" })
      expect(late.status).toBe(401)
      expect(late.headers.get("set-cookie")).toBeNull()
      expect(await late.text()).toContain("warden dashboard")
    } finally {
      started.child.kill("SIGTERM")
      await exited(started.child)
      short.cleanup()
    }
  })
})

/** Every file under a folder, recursively. */
const filesUnder = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(full) : entry.isFile() ? [full] : []
  })

// Last in this file: the codes every test above was given.
it("no login code is written to any of the daemon's files, its log included", () => {
  expect(issuedCodes.length).toBeGreaterThan(5)
  const files = filesUnder(ws.workspace)
  expect(files.some((file) => file.endsWith("warden.log"))).toBe(true)
  for (const file of files) {
    const text = fs.readFileSync(file, "latin1")
    for (const code of issuedCodes) expect(text.includes(code), `${file} holds a login code`).toBe(false)
  }
})
