import { post } from "./api.js"
import { useRoute } from "./route.js"
import { useDashboard } from "./store.js"
import { HistoryView } from "./views/HistoryView.js"
import { ServicesView } from "./views/ServicesView.js"
import { SessionsView } from "./views/SessionsView.js"
import { SessionView } from "./views/SessionView.js"

const TABS = [
  { href: "#/sessions", label: "Sessions", views: ["sessions", "session"] },
  { href: "#/services", label: "Services", views: ["services"] },
  { href: "#/history", label: "History", views: ["history"] }
] as const

const logOut = async () => {
  await post("/logout").catch(() => undefined)
  location.replace("/")
}

export const App = () => {
  const route = useRoute()
  const dashboard = useDashboard()
  const live = dashboard.live.feed && dashboard.live.machines
  return (
    <>
      <header class="top">
        <span class="brand">Warden</span>
        <nav>
          {TABS.map((tab) => (
            <a href={tab.href} class={(tab.views as ReadonlyArray<string>).includes(route.view) ? "tab current" : "tab"}>
              {tab.label}
            </a>
          ))}
        </nav>
        <span class={live ? "live on" : "live off"} data-live={live ? "yes" : "no"} title={live ? "following the feed" : "reconnecting to the feed"}>
          {live ? "live" : "offline"}
        </span>
        <button class="quiet" onClick={() => void logOut()}>
          Log out
        </button>
      </header>
      {dashboard.errors.length > 0 ? <div class="errors">{dashboard.errors[dashboard.errors.length - 1]}</div> : null}
      <main>
        {route.view === "sessions" ? <SessionsView /> : null}
        {route.view === "session" ? <SessionView bead={route.bead} key={route.bead} /> : null}
        {route.view === "services" ? <ServicesView /> : null}
        {route.view === "history" ? <HistoryView /> : null}
      </main>
    </>
  )
}
