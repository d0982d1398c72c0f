#!/usr/bin/env node
/**
 * The `warden` command. `warden signal`, which agents call on every hook and
 * turn, is handled without loading Effect or the full CLI; everything else
 * goes to the full CLI (`app.ts`), bundled by the build into `app.bundle.mjs`.
 */
import { hoistGlobalOptions, splitGlobals } from "./argv.js"

const hoisted = hoistGlobalOptions(process.argv.slice(2))
const { rest, ...global } = splitGlobals(hoisted)
if (rest[0] === "signal" && !rest.includes("--help") && !rest.includes("-h")) {
  const { signalMain } = await import("./signalMain.js")
  signalMain(global, rest.slice(1))
} else {
  // The build bundles the full CLI into one file (`npm run build`): one file parses in a fraction of
  // the time Node takes to resolve and load Effect's hundreds of modules.
  const bundle: string = "./app.bundle.mjs"
  const { runApp } = (await import(bundle)) as typeof import("./app.js")
  runApp([...process.argv.slice(0, 2), ...hoisted])
}
