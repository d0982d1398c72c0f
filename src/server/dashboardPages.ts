import { createHash } from "node:crypto"
import * as fs from "node:fs"
import type * as http from "node:http"
import * as path from "node:path"
import { Effect } from "effect"
import { wardenHome } from "../workspace/paths.js"
import type { CrossSiteRefused, OriginRefused, Unauthorized } from "./apiErrors.js"
import type { DashboardAuth } from "./dashboardAuth.js"
import { clearedSessionCookie, sessionCookie, sessionIdOf } from "./sessionCookie.js"

/**
 * The dashboard's pages, beside the API on the daemon's port: its static
 * files (read at run time from `src/dashboard/public/` in Warden's own
 * folder), `GET /login?code=` (a one-time code opens a session) and
 * `POST /logout`. The manifest and the icons are served to anyone (browsers
 * fetch them without cookies); every other page needs the session cookie or
 * the token, and without them answers a 401 page that says only how to log in.
 */

/** Where the dashboard's files are: Warden's own checkout, so the daemon serves the files of the code it runs. */
export const dashboardPublicDir = (): string => path.join(wardenHome(), "src", "dashboard", "public")

/** Where the page's bundle is: `dist/dashboard/assets/` (app.js, app.css), built by `npm run build` from `src/dashboard/app/`. */
export const dashboardAssetsDir = (): string => path.join(wardenHome(), "dist", "dashboard", "assets")

/** The paths this module answers; everything else is the API's. */
export const isDashboardPath = (pathname: string): boolean =>
  pathname === "/" ||
  pathname === "/login" ||
  pathname === "/logout" ||
  pathname === "/manifest.webmanifest" ||
  pathname.startsWith("/icons/") ||
  pathname.startsWith("/assets/")

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
  ".woff2": "font/woff2"
}

/** On every page: nothing from elsewhere, no framing, no sniffing, no referrer, no cache. */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  // style-src allows inline styles because @xterm/xterm (6.0, no nonce option) writes its cell sizes and theme
  // into <style> elements it creates, and the statechart SVG carries its own <style>; scripts stay 'self' only.
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const page = (title: string, body: string, script = ""): string =>
  `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<title>${escapeHtml(title)}</title></head><body>${body}${script === "" ? "" : `<script>${script}</script>`}</body></html>\n`

/** The login page's only script: replace() navigates without leaving the code's URL in the history. */
const LOGIN_SCRIPT = 'location.replace("/")'
const LOGIN_SCRIPT_HASH = createHash("sha256").update(LOGIN_SCRIPT).digest("base64")

/** The login page: the cookie comes with it, and the page navigates on its own (a redirect would not carry a cookie set on a cross-site navigation). */
const LOGIN_PAGE = page(
  "Warden: logging in",
  '<p>Logged in. Opening the dashboard&hellip;</p><noscript><p><a href="/">Open the dashboard</a></p></noscript>',
  LOGIN_SCRIPT
)
const LOGIN_CSP = `default-src 'none'; script-src 'sha256-${LOGIN_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`

const HOW_TO_LOG_IN = "Run <code>warden dashboard</code> on the server for a one-time login link."

const NOT_LOGGED_IN_PAGE = page("Warden: not logged in", `<h1>Not logged in</h1><p>${HOW_TO_LOG_IN}</p>`)

/** Why the link was refused (a sentence of its own), then the rule, said once. */
const loginRefusedPage = (sentence: string, codeLifetimeMs: number) =>
  page(
    "Warden: login link refused",
    `<h1>Login link refused</h1><p>${escapeHtml(sentence.charAt(0).toUpperCase() + sentence.slice(1))}. A login link works once, within ${Math.round(codeLifetimeMs / 1000)} seconds.</p><p>${HOW_TO_LOG_IN}</p>`
  )

const send = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string | ReadonlyArray<string>>
): void => {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body
  res.writeHead(status, { ...PAGE_HEADERS, ...headers, "content-length": String(bytes.length) })
  res.end(req.method === "HEAD" ? undefined : bytes)
}

const sendPage = (req: http.IncomingMessage, res: http.ServerResponse, status: number, html: string, headers: Record<string, string | ReadonlyArray<string>> = {}) =>
  send(req, res, status, html, { "content-type": CONTENT_TYPES[".html"]!, ...headers })

const sendJson = (req: http.IncomingMessage, res: http.ServerResponse, status: number, json: unknown, headers: Record<string, string> = {}) =>
  send(req, res, status, JSON.stringify(json), { "content-type": "application/json", ...headers })

/** A file under `dir` named by URL path segments (letters, digits, `.`, `_`, `-`; no segment starting with a dot), or null. */
const fileUnder = (dir: string, relative: string): string | null => {
  const segments = relative.split("/")
  if (segments.some((segment) => !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(segment))) return null
  return path.join(dir, ...segments)
}

export interface DashboardPagesOptions {
  readonly publicDir: string
  /** The built bundle's folder, served under `/assets/`. */
  readonly assetsDir: string
  readonly auth: DashboardAuth["Type"]
  /** The API's own check (token or cookie, origin, cross-site): the same one every route runs. */
  readonly authorize: (req: http.IncomingMessage) => Effect.Effect<void, Unauthorized | OriginRefused | CrossSiteRefused>
}

/** The handler of `isDashboardPath` paths; it never throws (a failure to read a file is a 404 or a 500 page). */
export const makeDashboardPages = (options: DashboardPagesOptions) => {
  const { publicDir, auth } = options

  const serveFile = (req: http.IncomingMessage, res: http.ServerResponse, file: string | null): Promise<void> =>
    fs.promises.readFile(file ?? "\0").then(
      (bytes) => send(req, res, 200, bytes, { "content-type": CONTENT_TYPES[path.extname(file!)] ?? "application/octet-stream" }),
      () => sendPage(req, res, 404, page("Warden: not found", "<h1>Not found</h1>"))
    )

  /** Runs the API's check; a refusal is answered as a page (401: only how to log in; 403: why). */
  const authorized = (req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> =>
    Effect.runPromise(
      options.authorize(req).pipe(
        Effect.as(true),
        Effect.catchAll((refusal) =>
          Effect.sync(() => {
            if (refusal._tag === "Unauthorized") sendPage(req, res, 401, NOT_LOGGED_IN_PAGE)
            else sendPage(req, res, 403, page("Warden: refused", `<h1>Refused</h1><p>${escapeHtml(refusal.message)}</p>`))
            return false
          })
        )
      )
    )

  const login = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const code = url.searchParams.get("code") ?? ""
    const outcome = await Effect.runPromise(Effect.either(auth.redeem(code)))
    if (outcome._tag === "Left") return sendPage(req, res, 401, loginRefusedPage(outcome.left.message, auth.lifetimes.loginCodeMs), { "referrer-policy": "no-referrer" })
    const session = outcome.right
    sendPage(req, res, 200, LOGIN_PAGE, {
      "content-security-policy": LOGIN_CSP,
      // The cookie lives as long as the session can; the daemon ends it sooner when it goes idle.
      "set-cookie": sessionCookie(session.id, auth.lifetimes.sessionMaxMs / 1000)
    })
  }

  const logout = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const id = sessionIdOf(req.headers)
    if (id === null) return sendJson(req, res, 401, { _tag: "Unauthorized", reason: "session", error: "no dashboard session to end (no session cookie)" })
    if (!(await authorized(req, res))) return
    await Effect.runPromise(auth.end(id))
    sendJson(req, res, 200, { logged_out: true }, { "set-cookie": clearedSessionCookie() })
  }

  const methodNotAllowed = (req: http.IncomingMessage, res: http.ServerResponse, allowed: string) =>
    sendPage(req, res, 405, page("Warden: method not allowed", `<h1>Method not allowed</h1><p>Use ${allowed}.</p>`), { allow: allowed })

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost")
    const method = req.method ?? "GET"
    const reading = method === "GET" || method === "HEAD"
    if (url.pathname === "/logout") return method === "POST" ? logout(req, res) : methodNotAllowed(req, res, "POST")
    // GET only: a HEAD (a link checker's, say) must not use the code up.
    if (url.pathname === "/login") return method === "GET" ? login(req, res, url) : methodNotAllowed(req, res, "GET")
    if (!reading) return methodNotAllowed(req, res, "GET, HEAD")
    // Browsers fetch the manifest and its icons without cookies: served to anyone.
    if (url.pathname === "/manifest.webmanifest") return serveFile(req, res, path.join(publicDir, "manifest.webmanifest"))
    if (url.pathname.startsWith("/icons/")) return serveFile(req, res, fileUnder(path.join(publicDir, "icons"), url.pathname.slice("/icons/".length)))
    if (!(await authorized(req, res))) return
    if (url.pathname === "/") return serveFile(req, res, path.join(publicDir, "index.html"))
    return serveFile(req, res, fileUnder(options.assetsDir, url.pathname.slice("/assets/".length)))
  }

  return {
    serve: (req: http.IncomingMessage, res: http.ServerResponse): void => {
      route(req, res).catch(() => {
        if (!res.headersSent) sendPage(req, res, 500, page("Warden: error", "<h1>Internal error</h1>"))
        else res.destroy()
      })
    }
  }
}

