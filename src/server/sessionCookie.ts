import type * as http from "node:http"

/**
 * The dashboard's session cookie and the checks that keep other sites from
 * using it. The cookie is HttpOnly (no script reads it) and SameSite=Strict
 * (a browser sends it only on requests its own pages start), and a request
 * that changes state with it must also show that it comes from the daemon's
 * own origin and carry the session's CSRF token (`X-Warden-CSRF`).
 */

export const SESSION_COOKIE = "warden_session"

/** The header a cookie-authenticated state-changing request carries its session's CSRF token in. */
export const CSRF_HEADER = "x-warden-csrf"

/** The session id a request's `Cookie` header carries, or null. */
export const sessionIdOf = (headers: http.IncomingHttpHeaders): string | null => {
  const cookie = headers.cookie
  if (cookie === undefined) return null
  for (const pair of cookie.split(";")) {
    const at = pair.indexOf("=")
    if (at > 0 && pair.slice(0, at).trim() === SESSION_COOKIE) {
      const value = pair.slice(at + 1).trim()
      return value === "" ? null : value
    }
  }
  return null
}

/** `Set-Cookie` for a new session, living `maxAgeSeconds`. */
export const sessionCookie = (id: string, maxAgeSeconds: number): string =>
  `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`

/** `Set-Cookie` that removes the session cookie. */
export const clearedSessionCookie = (): string => `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`

/** The daemon's own origins on a port: its pages' requests carry one of them as `Origin`. */
export const ownOriginsOf = (host: string, port: number): ReadonlyArray<string> =>
  host === "127.0.0.1" ? [`http://127.0.0.1:${port}`, `http://localhost:${port}`] : [`http://${host}:${port}`]

/**
 * Where a request comes from, by `Origin`, else `Sec-Fetch-Site`, else the
 * `Referer`'s origin: `same-origin` (one of the daemon's own), `cross-site`,
 * or `unknown` when it says none of them (treated as cross-site where it matters).
 */
export const requestSite = (headers: http.IncomingHttpHeaders, ownOrigins: ReadonlyArray<string>): "same-origin" | "cross-site" | "unknown" => {
  const origin = headers.origin
  if (origin !== undefined) return ownOrigins.includes(origin) ? "same-origin" : "cross-site"
  const fetchSite = headers["sec-fetch-site"]
  if (fetchSite !== undefined) return fetchSite === "same-origin" ? "same-origin" : "cross-site"
  const referer = headers.referer
  if (referer !== undefined && referer !== "") {
    try {
      return ownOrigins.includes(new URL(referer).origin) ? "same-origin" : "cross-site"
    } catch {
      // a Referer that is not a URL says nothing we can trust
      return "cross-site"
    }
  }
  return "unknown"
}

/** Whether a request changes state (anything but GET and HEAD), for the cross-site checks. */
export const changesState = (method: string | undefined): boolean => method !== undefined && method !== "GET" && method !== "HEAD"
