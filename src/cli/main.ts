#!/usr/bin/env node
/**
 * The `warden` command. `warden signal`, which agents call on every hook and
 * turn, is handled without loading Effect or the full CLI; everything else
 * goes to the full CLI (`app.ts`), `warden daemon` to a build of it that
 * holds the HTTP server too. The build bundles each into one file
 * (`*.bundle.mjs`, esbuild): one file loads in a fraction of the time Node
 * takes to resolve and load Effect's hundreds of modules.
 */
import { hoistGlobalOptions, splitGlobals } from "./argv.js"

// A reader that stopped reading (`warden tail | head`) ends the command quietly, as it does any Unix filter.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0)
    throw error
  })
}

const hoisted = hoistGlobalOptions(process.argv.slice(2))
const { rest, ...global } = splitGlobals(hoisted)
for (const [option, value] of [["--workspace", global.workspace], ["--config", global.config]] as const) {
  if (value !== undefined && (value === "" || value.startsWith("-"))) {
    process.stderr.write(`warden: ${option} needs a ${option === "--workspace" ? "directory" : "file"} after it\n`)
    process.exit(2)
  }
}
if (rest[0] === "signal" && !rest.includes("--help") && !rest.includes("-h")) {
  const signal: string = "./signalMain.bundle.mjs"
  const { signalMain } = (await import(signal)) as typeof import("./signalMain.js")
  signalMain(global, rest.slice(1))
} else {
  // `warden daemon` alone loads the HTTP server's code (@effect/platform's HttpApi and node server): it has
  // a bundle of its own, the full CLI with the server in it, so no other command parses that code.
  const bundle: string = rest[0] === "daemon" ? "./daemon.bundle.mjs" : "./app.bundle.mjs"
  const { runApp } = (await import(bundle)) as typeof import("./app.js")
  runApp([...process.argv.slice(0, 2), ...hoisted])
}
