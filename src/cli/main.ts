#!/usr/bin/env node
/**
 * The `warden` command. `warden signal`, which agents call on every hook and
 * turn, is handled without loading Effect or the full CLI (a tenth of the
 * start-up time); everything else goes to the full CLI (`app.ts`).
 */
import { hoistGlobalOptions, splitGlobals } from "./argv.js"

const hoisted = hoistGlobalOptions(process.argv.slice(2))
const { rest, ...global } = splitGlobals(hoisted)
if (rest[0] === "signal" && !rest.includes("--help") && !rest.includes("-h")) {
  const { signalMain } = await import("./signalMain.js")
  signalMain(global, rest.slice(1))
} else {
  const { runApp } = await import("./app.js")
  runApp([...process.argv.slice(0, 2), ...hoisted])
}
