import { useEffect, useState } from "preact/hooks"

/** The page's views, by the address's hash: `#/sessions`, `#/sessions/<bead>`, `#/services`, `#/history`. */
export type Route =
  | { readonly view: "sessions" }
  | { readonly view: "session"; readonly bead: string }
  | { readonly view: "services" }
  | { readonly view: "history" }

export const parseRoute = (hash: string): Route => {
  const parts = hash.replace(/^#\/?/, "").split("/").filter((part) => part !== "")
  if (parts[0] === "sessions" && parts[1] !== undefined) return { view: "session", bead: decodeURIComponent(parts[1]) }
  if (parts[0] === "services") return { view: "services" }
  if (parts[0] === "history") return { view: "history" }
  return { view: "sessions" }
}

export const sessionHref = (bead: string): string => `#/sessions/${encodeURIComponent(bead)}`

export const useRoute = (): Route => {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const follow = () => setRoute(parseRoute(location.hash))
    addEventListener("hashchange", follow)
    return () => removeEventListener("hashchange", follow)
  }, [])
  return route
}
