#!/usr/bin/env node
/**
 * The `warden` command. `warden signal`, which agents call on every hook and
 * turn, is handled without loading Effect or the full CLI; everything else
 * goes to the full CLI (`app.ts`). The build bundles each into one file
 * (`*.bundle.mjs`, esbuild): one file loads in a fraction of the time Node
 * takes to resolve and load Effect's hundreds of modules.
 */
import { hoistGlobalOptions, splitGlobals } from "./argv.js"

const hoisted = hoistGlobalOptions(process.argv.slice(2))
const { rest, ...global } = splitGlobals(hoisted)
if (rest[0] === "signal" && !rest.includes("--help") && !rest.includes("-h")) {
  const signal: string = "./signalMain.bundle.mjs"
  const { signalMain } = (await import(signal)) as typeof import("./signalMain.js")
  signalMain(global, rest.slice(1))
} else {
  const bundle: string = "./app.bundle.mjs"
  const { runApp } = (await import(bundle)) as typeof import("./app.js")
  runApp([...process.argv.slice(0, 2), ...hoisted])
}
