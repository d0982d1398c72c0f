/** The command line before any parser sees it: no module here may load Effect (see `main.ts`). */

/** Global options may be written anywhere; @effect/cli wants them before the subcommand. */
export const hoistGlobalOptions = (argv: ReadonlyArray<string>): string[] => {
  const globals: string[] = []
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--workspace" || arg === "--config") {
      globals.push(arg, argv[i + 1] ?? "")
      i++
    } else if (arg.startsWith("--workspace=") || arg.startsWith("--config=")) {
      const [name, ...value] = arg.split("=")
      globals.push(name!, value.join("="))
    } else rest.push(arg)
  }
  return [...globals, ...rest]
}

/** The global options' values and what follows them, from a hoisted command line. */
export const splitGlobals = (hoisted: ReadonlyArray<string>): { workspace?: string; config?: string; rest: string[] } => {
  const out: { workspace?: string; config?: string; rest: string[] } = { rest: [] }
  let i = 0
  for (; i + 1 < hoisted.length && (hoisted[i] === "--workspace" || hoisted[i] === "--config"); i += 2) {
    if (hoisted[i] === "--workspace") out.workspace = hoisted[i + 1]!
    else out.config = hoisted[i + 1]!
  }
  out.rest = hoisted.slice(i)
  return out
}
