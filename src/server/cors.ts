import type * as http from "node:http"

/** How long a browser may cache a preflight's answer. */
export const CORS_MAX_AGE_SECONDS = 600

/**
 * CORS for the origins given with `--allow-origin`, and for them only: a
 * request from such an origin gets `Access-Control-Allow-Origin` naming it
 * (never `*`), and its preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) is answered without the token, since
 * browsers send none with it. Any other origin is refused with 403 before
 * this is reached.
 */
export const allowOrigin = (res: http.ServerResponse, origin: string | undefined): void => {
  res.setHeader("vary", "origin")
  if (origin !== undefined) res.setHeader("access-control-allow-origin", origin)
}

/** Whether this is a CORS preflight (answered by `answerPreflight`, before the token is checked). */
export const isPreflight = (req: http.IncomingMessage): boolean =>
  req.method === "OPTIONS" && req.headers.origin !== undefined && req.headers["access-control-request-method"] !== undefined

export const answerPreflight = (res: http.ServerResponse): void => {
  res.writeHead(204, {
    "access-control-allow-methods": "GET, POST",
    "access-control-allow-headers": "authorization, content-type",
    "access-control-max-age": String(CORS_MAX_AGE_SECONDS),
    "content-length": "0"
  })
  res.end()
}
