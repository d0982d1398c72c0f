import "@xterm/xterm/css/xterm.css"
import "./app.css"
import { render } from "preact"
import { App } from "./App.js"
import { startDashboard } from "./store.js"

startDashboard()
render(<App />, document.getElementById("app")!)
