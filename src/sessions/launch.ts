import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect } from "effect"
import type { LaunchOutput } from "../../machines/agentSession.types.js"
import { Git, type ChangesScope, type StatusBaseline } from "../git/Git.js"
import { AgentProcesses } from "../processes/agentProcesses.js"
import { writeFileAtomic } from "../records/RecordStore.js"
import { Terminals, sessionNameFor } from "../terminals/Terminals.js"
import { stripControlCharacters } from "../terminals/typedText.js"
import { expandHome, wardenCliEntry } from "../workspace/paths.js"
import { agentUmask, stateUmask } from "../workspace/statePermissions.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import { waitForScreen } from "./screenWait.js"
import { compileRules, readScreen, screenShows } from "./screenRules.js"
import type { ProfileConfig } from "../config/schema.js"

/**
 * What a launch left for a restored supervisor to adopt it by (the base commit, the signal log's
 * offset, whether the prompt went in) and for verification to tell this attempt's work from what was
 * there before (`git status` at the launch, fingerprinted, and the launch's time).
 */
interface LaunchRecord {
  readonly baseCommit: string | null
  readonly signalsOffset: number
  readonly delivered: boolean
  readonly at: number
  readonly baseline?: StatusBaseline
  /** The attempt's memory line is written: a restored supervisor that runs `remembering` again must not repeat it. */
  readonly remembered?: boolean
}

const readLaunchRecord = (file: string): LaunchRecord | null => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LaunchRecord
  } catch {
    // no launch record (or a torn one): this attempt was not launched
    return null
  }
}

/** What counts as this attempt's work: commits from its launch on, paths that differ from `git status` then. */
export const launchScope = (file: string): ChangesScope => {
  const record = readLaunchRecord(file)
  return record === null ? {} : { sinceMs: record.at, baseline: record.baseline ?? {} }
}

/** Notes a step of the attempt that must happen once (the prompt typed, the memory line written) in its launch record. */
const markLaunchRecord = (file: string, step: "delivered" | "remembered"): void => {
  const record = readLaunchRecord(file)
  if (record !== null) writeFileAtomic(file, JSON.stringify({ ...record, [step]: true }))
}

/** The prompt was typed and taken: a restored supervisor must not type it again. */
export const markDelivered = (file: string): void => markLaunchRecord(file, "delivered")

/** The attempt's memory line is written. */
export const markRemembered = (file: string): void => markLaunchRecord(file, "remembered")

/** Whether the attempt's memory line was written already (by a supervisor killed before it left `remembering`). */
export const wasRemembered = (file: string): boolean => readLaunchRecord(file)?.remembered === true

/** Quotes a word for POSIX sh. */
export const shQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`

const fill = (arg: string, values: Record<string, string>): string =>
  arg.replace(/\{(prompt|promptFile|settingsFile|wardenBin|bead|attemptId|repo|model|permissionMode|command|wardenHome)\}/g, (_, key: string) => values[key] ?? "")

/** The program and arguments of the profile for this attempt (before the launcher wraps them). */
export const agentArgv = (spec: DispatchSpec, values: Record<string, string>): string[] => {
  const profile = spec.profile.config
  const args = profile.args.map((arg) => fill(arg, values))
  if (profile.prompt.mode === "argument" && !profile.args.some((arg) => arg.includes("{prompt}"))) args.push(values.prompt ?? "")
  return [profile.command, ...args]
}

/**
 * The launcher the tmux pane runs: it starts the agent in the repo and, when
 * the agent ends (or the pane is killed), writes the exit file that completion
 * detection watches. Everything is quoted; nothing secret is written into it
 * (the environment arrives through the file `Terminals.create` hands over).
 *
 * The pane's program leads a session and process group of its own (tmux starts it
 * with `setsid`); the agent runs in that group as the terminal's foreground, so it
 * keeps the pane as its controlling terminal and Ctrl-C reaches it. It runs in the
 * background of this shell all the same, so that `wait` returns the moment the pane
 * hangs up (a shell defers a trap until its foreground child ends): then the launcher
 * ends the agent's group and, after the grace, the attempt's cgroup (`setsid`
 * children included) instead of waiting for an agent that may never end.
 */
export const launcherScript = (input: {
  readonly repo: string
  readonly argv: ReadonlyArray<string>
  readonly stdinFile: string | null
  readonly exitFile: string
  readonly attemptId: string
  readonly path: string
  /** The attempt's cgroup (v2) to move into before the agent starts, or null. */
  readonly cgroup: string | null
  readonly killGraceMs: number
}): string => {
  const exitTemp = `${input.exitFile}.tmp`
  const graceTicks = Math.max(1, Math.ceil(input.killGraceMs / 100))
  return [
    "#!/bin/sh",
    "# Written by warden for one attempt; the pane runs it.",
    // First, so that everything started from here on is in the attempt's cgroup.
    `warden_cgroup=${shQuote(input.cgroup ?? "")}`,
    `if [ -n "$warden_cgroup" ]; then { echo $$ > "$warden_cgroup/cgroup.procs"; } 2>/dev/null || warden_cgroup=''; fi`,
    `cd ${shQuote(input.repo)} || exit 97`,
    // Warden's own files are private (umask 077 or 027, inherited through tmux); the agent gets the operator's umask back.
    `umask ${agentUmask()}`,
    // tmux gives a new session the PATH of the client that created it, whatever `-e PATH=` says.
    `PATH=${shQuote(input.path)}; export PATH`,
    "warden_agent=''",
    "warden_exit() {",
    `  umask ${stateUmask()}`,
    `  printf '{"attempt_id":"%s","exit_code":%s,"at":"%s"}\\n' ${shQuote(input.attemptId)} "$1" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" > ${shQuote(exitTemp)} && mv ${shQuote(exitTemp)} ${shQuote(input.exitFile)}`,
    "}",
    // The pane hung up (its session or the tmux server is gone) or the session is being killed:
    // SIGTERM to the group, the grace, then SIGKILL to all of the attempt (this shell included).
    "warden_end() {",
    "  trap '' HUP TERM",
    '  warden_exit "$1"',
    "  kill -TERM 0 2>/dev/null",
    "  warden_i=0",
    `  while [ -n "$warden_agent" ] && kill -0 "$warden_agent" 2>/dev/null && [ "$warden_i" -lt ${graceTicks} ]; do sleep 0.1; warden_i=$((warden_i + 1)); done`,
    `  if [ -n "$warden_cgroup" ]; then { echo 1 > "$warden_cgroup/cgroup.kill"; } 2>/dev/null; fi`,
    "  kill -KILL 0 2>/dev/null",
    '  exit "$1"',
    "}",
    "trap 'warden_end 129' HUP",
    "trap 'warden_end 143' TERM",
    // Ctrl-C in the pane is the agent's: this shell ignores it, the agent gets the default back.
    "trap '' INT QUIT",
    "exec 3<&0",
    `env --default-signal=INT,QUIT -- ${input.argv.map(shQuote).join(" ")} ${input.stdinFile === null ? "<&3" : `< ${shQuote(input.stdinFile)}`} 3<&- &`,
    "warden_agent=$!",
    "exec 3<&-",
    'wait "$warden_agent"',
    "code=$?",
    'warden_exit "$code"',
    'exit "$code"',
    ""
  ].join("\n")
}

/** The shim that puts `warden` on the agent's PATH, pointing at this installation. */
export const ensureWardenShim = (binDir: string): void => {
  const shim = path.join(binDir, "warden")
  const text = `#!/bin/sh\nexec ${shQuote(process.execPath)} ${shQuote(wardenCliEntry())} "$@"\n`
  if (fs.existsSync(shim) && fs.readFileSync(shim, "utf8") === text) return
  fs.mkdirSync(binDir, { recursive: true })
  fs.writeFileSync(`${shim}.tmp`, text, { mode: 0o755 })
  fs.renameSync(`${shim}.tmp`, shim)
}

/**
 * Claude Code settings that install Warden's hooks: every turn end (`Stop`)
 * and every notification reach `warden signal`, which decides whether the
 * turn ended the task or waits for an answer.
 */
export const claudeHookSettings = (wardenBin: string, attemptId: string): string => {
  const command = `${shQuote(wardenBin)} signal --from claude-hook --attempt ${shQuote(attemptId)}`
  const hook = [{ hooks: [{ type: "command", command, timeout: 30 }] }]
  // Unattended runs in bypass mode would otherwise stop at Claude Code's warning dialog.
  return `${JSON.stringify({ hooks: { Stop: hook, Notification: hook }, skipDangerousModePermissionPrompt: true }, null, 2)}\n`
}

/** The agent's environment: the dispatcher's, then the profile's, then Warden's own variables. */
export const agentEnv = (spec: DispatchSpec, attemptId: string, attempt: number, promptFile: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(spec.env)) if (!key.startsWith("TMUX")) env[key] = value
  Object.assign(env, spec.profile.config.env)
  if (process.getuid?.() === 0 && spec.config.allowRootResolved) Object.assign(env, spec.profile.config.rootEnv)
  if (spec.profile.config.model !== undefined) env.WARDEN_MODEL = spec.profile.config.model
  env.WARDEN_BEAD = spec.bead
  env.WARDEN_ATTEMPT = attemptId
  env.WARDEN_ATTEMPT_NUMBER = String(attempt)
  env.WARDEN_WORKSPACE = spec.paths.root
  env.WARDEN_STATUS_FILE = spec.paths.statusFile(spec.bead)
  env.WARDEN_PROMPT_FILE = promptFile
  env.WARDEN_TMUX_SOCKET = spec.config.tmuxSocket
  if (spec.config.file !== null) env.WARDEN_CONFIG = spec.config.file
  env.PATH = `${spec.paths.bin}:${env.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`
  return env
}

/**
 * Types the prompt into a program that shows it is ready, then confirms the
 * program took it: the screen changes (or shows the profile's accepted pattern).
 */
export const deliverByKeys = (
  name: string,
  transcriptPath: string,
  profile: ProfileConfig,
  prompt: string,
  readyScreen: ReadonlyArray<string>
) =>
  Effect.gen(function* () {
    const terminals = yield* Terminals
    const before = readyScreen.join("\n")
    const delay = profile.prompt.enterDelayMs
    // Typed keystroke by keystroke, a control character in the prompt (from a bead's title, say) would act on
    // the agent's program: a prompt is data, so they are dropped here and CR/CRLF become LF. The other modes
    // (file, argument, stdin) hand the prompt over as it is.
    const typed = stripControlCharacters(prompt)
    const sent = yield* (delay === 0
      ? terminals.sendText(name, typed, true)
      : terminals.sendText(name, typed, false).pipe(
          Effect.zipRight(Effect.sleep(delay)),
          Effect.zipRight(terminals.sendText(name, "", true))
        )
    ).pipe(Effect.either)
    if (sent._tag === "Left") return { ok: false as const, error: `could not type the prompt: ${sent.left.message}`, screen: readyScreen }
    const accepted = profile.prompt.acceptedPattern === undefined ? null : new RegExp(profile.prompt.acceptedPattern, "m")
    const confirmation = yield* waitForScreen(
      name,
      transcriptPath,
      (screen) => (accepted === null ? screen.join("\n") !== before : accepted.test(screen.join("\n"))),
      10_000
    )
    if (confirmation._tag === "TimedOut") return { ok: false as const, error: "the prompt was typed but the agent did not take it", screen: confirmation.screen }
    return { ok: true as const, error: null, screen: confirmation.screen }
  })

/**
 * Creates the attempt's tmux session and delivers the prompt. For keystroke
 * delivery the prompt is typed only after the profile's ready pattern shows,
 * and the delivery is confirmed by the screen changing (or the accepted pattern).
 */
export const launchAttempt = (spec: DispatchSpec, attemptId: string, attempt: number, mayEndSession: () => boolean = () => true) =>
  Effect.gen(function* () {
    const terminals = yield* Terminals
    const git = yield* Git
    const agentProcesses = yield* AgentProcesses
    const paths = spec.paths
    const profile = spec.profile.config
    const repo = fs.realpathSync(path.resolve(expandHome(spec.repo)))
    const name = sessionNameFor(spec.bead)
    const transcriptPath = paths.transcriptFile(spec.bead, attemptId)
    const promptFile = paths.promptFile(spec.bead, attemptId)
    const exitFile = paths.exitFile(spec.bead, attemptId)
    const launcher = paths.launcherFile(spec.bead, attemptId)
    const prompt = spec.prompt.ok ? spec.prompt.text : ""
    const failure = (error: string, screen: ReadonlyArray<string> = []) =>
      Effect.map(Clock.currentTimeMillis, (at): LaunchOutput => ({
        at,
        ok: false,
        error,
        sessionName: name,
        transcriptPath,
        baseCommit: null,
        screen,
        signalsOffset: 0,
        promptPending: false
      }))

    for (const dir of [paths.watch, paths.transcripts]) fs.mkdirSync(dir, { recursive: true })
    // Run again for an attempt that already launched (a supervisor restored from its snapshot):
    // adopt the session as it is, never launch twice, never clear what the agent wrote meanwhile.
    const launched = readLaunchRecord(paths.launchRecordFile(spec.bead, attemptId))
    // The record is written just before the session is created: a record with no session and no exit
    // file is a launch stopped (the daemon killed) before the session existed, so it goes on below.
    const started =
      launched !== null &&
      (fs.existsSync(exitFile) || (yield* terminals.info(name).pipe(Effect.catchAll(() => Effect.succeed(null)))) !== null)
    if (launched !== null && started) {
      const screen = yield* terminals.capture(name).pipe(Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)))
      return {
        at: yield* Clock.currentTimeMillis,
        ok: true,
        error: null,
        sessionName: name,
        transcriptPath,
        baseCommit: launched.baseCommit,
        screen,
        signalsOffset: launched.signalsOffset,
        promptPending: profile.prompt.mode === "keys" && !launched.delivered
      } satisfies LaunchOutput
    }
    ensureWardenShim(paths.bin)
    // A retry must never read the previous attempt's status file.
    fs.rmSync(paths.statusFile(spec.bead), { force: true })
    const signalsFile = paths.signalsFile(spec.bead)
    const signalsOffset = launched?.signalsOffset ?? (fs.existsSync(signalsFile) ? fs.statSync(signalsFile).size : 0)
    fs.writeFileSync(promptFile, prompt, { mode: 0o600 })
    fs.writeFileSync(transcriptPath, "", { flag: "a" })
    const argv = agentArgv(spec, {
      prompt,
      promptFile,
      settingsFile: paths.settingsFile(spec.bead, attemptId),
      wardenBin: path.join(paths.bin, "warden"),
      bead: spec.bead,
      attemptId,
      repo,
      model: spec.profile.model,
      permissionMode: profile.permissionMode ?? "default",
      command: spec.command ?? "",
      wardenHome: spec.config.wardenHome
    })
    const env = agentEnv(spec, attemptId, attempt, promptFile)
    const cgroup = yield* agentProcesses.prepare(attemptId)
    fs.writeFileSync(
      launcher,
      launcherScript({
        repo,
        argv,
        stdinFile: profile.prompt.mode === "stdin" ? promptFile : null,
        exitFile,
        attemptId,
        path: env.PATH!,
        cgroup,
        killGraceMs: spec.config.killGraceMs
      }),
      { mode: 0o700 }
    )
    const settingsFile = paths.settingsFile(spec.bead, attemptId)
    if (profile.hooks === "claude-settings") fs.writeFileSync(settingsFile, claudeHookSettings(path.join(paths.bin, "warden"), attemptId), { mode: 0o600 })
    const baseCommit = launched?.baseCommit ?? (yield* git.head(repo))
    // Recorded before the session exists, so a supervisor killed while tmux creates it adopts the
    // session instead of creating it again (and keeps the base commit the agent started from).
    const baseline = launched?.baseline ?? (yield* git.statusBaseline(repo))
    const launchRecord = { baseCommit, signalsOffset, delivered: profile.prompt.mode !== "keys", at: launched?.at ?? (yield* Clock.currentTimeMillis), baseline }
    writeFileAtomic(paths.launchRecordFile(spec.bead, attemptId), JSON.stringify(launchRecord))

    const created = yield* terminals
      .create({
        name,
        cwd: repo,
        command: ["/bin/sh", launcher],
        env,
        envFile: paths.envFile(spec.bead, attemptId),
        transcriptPath
      })
      .pipe(Effect.either)
    if (created._tag === "Left") return yield* failure(`could not create the tmux session: ${created.left.message}`)

    // From here on the session exists: whatever stops the launch (a failure, a cancel, the deadline) ends it too.
    // Not when the supervisor itself is stopping: agents outlive it and are re-adopted.
    const endSession = Effect.suspend(() => (mayEndSession() ? terminals.kill(name).pipe(Effect.ignore) : Effect.void))
    const deliver = Effect.gen(function* () {
      let promptPending = false
      if (profile.prompt.mode === "keys") {
        const ready = new RegExp(profile.prompt.readyPattern ?? "[\\s\\S]", "m")
        const rules = compileRules(profile.completion.waitingPatterns, null)
        const readiness = yield* waitForScreen(
          name,
          transcriptPath,
          (screen) => screenShows(screen, ready) || readScreen(screen, rules).kind === "dialog",
          profile.prompt.readyTimeoutMs
        )
        if (readiness._tag === "Exited") return yield* failure(`the agent exited (status ${readiness.status}) before it was ready for the prompt`, readiness.screen)
        if (readiness._tag === "TimedOut")
          return yield* failure(`the agent did not show its ready prompt /${ready.source}/ within ${profile.prompt.readyTimeoutMs} ms`, readiness.screen)
        if (readScreen(readiness.screen, rules).kind === "dialog") {
          // A dialog came first (folder trust, an API key): the session waits for its answer, and the
          // watcher types the prompt once the agent is ready.
          promptPending = true
        } else {
          const delivered = yield* deliverByKeys(name, transcriptPath, profile, prompt, readiness.screen)
          if (!delivered.ok) return yield* failure(delivered.error, delivered.screen)
          markDelivered(paths.launchRecordFile(spec.bead, attemptId))
        }
      }
      const screen = yield* terminals.capture(name).pipe(Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)))
      const at = yield* Clock.currentTimeMillis
      return { at, ok: true, error: null, sessionName: name, transcriptPath, baseCommit, screen, signalsOffset, promptPending } satisfies LaunchOutput
    })
    return yield* deliver.pipe(
      Effect.tap((output) => (output.ok ? Effect.void : endSession)),
      Effect.tapError(() => endSession),
      Effect.onInterrupt(() => endSession)
    )
  })
