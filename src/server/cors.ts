import type * as http from "node:http"

/** How long a browser may cache a preflight's answer. */
export const CORS_MAX_AGE_SECONDS = 600

/**
 * CORS for the origins given with `--allow-origin`, and for them only: a
 * request from such an origin gets `Access-Control-Allow-Origin` naming it
 * (never `*`), and its preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) is answered without the token, since
 * browsers send none with it. Any other origin is refused with 403 (by
 * `authorize`, or before a preflight is answered).
 */
export const corsHeaders = (origin: string | undefined, allowed: boolean): Record<string, string> => ({
  vary: "origin",
  ...(origin !== undefined && allowed ? { "access-control-allow-origin": origin } : {})
})

/** Whether this is a CORS preflight (answered before the token is checked). */
export const isPreflight = (method: string, headers: http.IncomingHttpHeaders): boolean =>
  method === "OPTIONS" && headers.origin !== undefined && headers["access-control-request-method"] !== undefined

/** What a preflight from an allowed origin is answered with (status 204). */
export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-methods": "GET, POST",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": String(CORS_MAX_AGE_SECONDS)
}
