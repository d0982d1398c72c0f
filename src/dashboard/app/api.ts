/**
 * The page's calls to the daemon's JSON API. The session cookie goes with every
 * request (same origin); every POST carries the session's CSRF token as
 * `X-Warden-CSRF` (from `GET /v1/dashboard/session`, asked once).
 */

/** A refusal from the API, with the API's own words (`error`) for the operator. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message)
  }
}

const refusal = async (response: Response): Promise<ApiError> => {
  const text = await response.text().catch(() => "")
  let message = text.trim() === "" ? response.statusText : text.trim()
  try {
    const json = JSON.parse(text) as { error?: unknown }
    if (typeof json.error === "string") message = json.error
  } catch {
    // not JSON: the text as it came
  }
  return new ApiError(response.status, `${response.status}: ${message}`)
}

export const getJson = async <T>(path: string): Promise<T> => {
  const response = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } })
  if (!response.ok) throw await refusal(response)
  return (await response.json()) as T
}

export const getText = async (path: string): Promise<string> => {
  const response = await fetch(path, { credentials: "same-origin" })
  if (!response.ok) throw await refusal(response)
  return response.text()
}

let csrf: Promise<string> | null = null

const csrfToken = (): Promise<string> => {
  csrf ??= getJson<{ csrf: string }>("/v1/dashboard/session").then(
    (answer) => answer.csrf,
    (error: unknown) => {
      csrf = null
      throw error
    }
  )
  return csrf
}

/** A state-changing request; the API's refusal is thrown as an `ApiError` carrying its text. */
export const post = async <T = unknown>(path: string, body: unknown = {}): Promise<T> => {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-warden-csrf": await csrfToken() },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw await refusal(response)
  return (await response.json().catch(() => ({}))) as T
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The websocket URL of a daemon path, on the page's own origin. */
export const wsUrl = (path: string): string => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`
