import { Context, type Effect, Schema } from "effect"

/**
 * Why a terminal operation failed:
 * - `invalid-input`: a session name, text or key the terminal refuses before running anything;
 * - `exists`: a session of that name is already there (create);
 * - `not-found`: no session of that name (the memory terminals; tmux's own answer is `command-failed`);
 * - `unsafe-socket`: the tmux socket is not one this user may trust;
 * - `spawn-failed`: tmux or ps could not be run at all, or timed out;
 * - `command-failed`: tmux or ps ran and refused (its exit code and message are in `detail`);
 * - `io`: a file the operation needs (environment file, transcript) could not be written.
 */
export const TerminalErrorReason = Schema.Literal(
  "invalid-input",
  "exists",
  "not-found",
  "unsafe-socket",
  "spawn-failed",
  "command-failed",
  "io"
)
export type TerminalErrorReason = typeof TerminalErrorReason.Type

/** A terminal operation failed; `reason` says which kind of failure, `detail` (the message) what the operator can act on. */
export class TerminalError extends Schema.TaggedError<TerminalError>()("TerminalError", {
  operation: Schema.String,
  session: Schema.String,
  reason: TerminalErrorReason,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

export interface CreateTerminal {
  /** The tmux session name (already mapped from the bead: no `.` or `:`). */
  readonly name: string
  /** Working directory of the program. */
  readonly cwd: string
  /** The program and its arguments, run directly (no shell unless the program is one). */
  readonly command: ReadonlyArray<string>
  /**
   * The whole environment of the program: tmux would otherwise give it the server's. It never goes on a
   * command line (tmux keeps its argv for the server's life, and `ps` shows it to every local user).
   */
  readonly env: Readonly<Record<string, string>>
  /**
   * Where the environment is handed over: a file of mode 0600 that the pane reads and removes before the
   * program starts. Default: the transcript's path with `.env` appended.
   */
  readonly envFile?: string
  /** Where `pipe-pane` appends everything the program prints. */
  readonly transcriptPath: string
  readonly width?: number
  readonly height?: number
}

export interface TerminalInfo {
  readonly name: string
  /** Pid of the program in the pane (the launcher), or null when the pane has died. */
  readonly panePid: number | null
  readonly dead: boolean
  readonly deadStatus: number | null
}

/**
 * Durable terminals for agents: tmux sessions on the agents' own socket, so
 * agents outlive the supervisor and `tmux attach` works over SSH. Every target
 * is exact (`=name`), never a prefix match.
 */
export class Terminals extends Context.Tag("warden/Terminals")<
  Terminals,
  {
    /** The tmux socket the sessions live on (shown to operators for `tmux -S ... attach`). */
    readonly socket: string
    /** Why the socket may not be used (planted by someone else, a symlink, in a directory others can write), or null. */
    readonly socketProblem: Effect.Effect<string | null>
    /** Creates the session running `command`; the pane stays after the program exits so it can be captured. */
    readonly create: (spec: CreateTerminal) => Effect.Effect<TerminalInfo, TerminalError>
    /** Whether a session of exactly this name exists (alive or with a dead pane). */
    readonly exists: (name: string) => Effect.Effect<boolean, TerminalError>
    readonly info: (name: string) => Effect.Effect<TerminalInfo | null, TerminalError>
    /** The visible screen plus up to `history` lines of scrollback, as plain text lines. */
    readonly capture: (name: string, history?: number) => Effect.Effect<ReadonlyArray<string>, TerminalError>
    /** Types `text` literally (no key-name interpretation), then Enter when `enter` is true. */
    readonly sendText: (name: string, text: string, enter: boolean) => Effect.Effect<void, TerminalError>
    /** Presses named keys (`Down`, `Enter`, `Escape`, `C-c`, ...), for dialogs that want a choice rather than text. */
    readonly sendKeys: (name: string, keys: ReadonlyArray<string>) => Effect.Effect<void, TerminalError>
    /** Kills the session and its program's whole process tree; a missing session is not an error. */
    readonly kill: (name: string) => Effect.Effect<void, TerminalError>
    /** Every pane on the socket with its session and whether its program ended: one call for all sessions. */
    readonly panes: Effect.Effect<ReadonlyArray<{ readonly session: string; readonly dead: boolean; readonly deadStatus: number | null }>, TerminalError>
    /** Names of all sessions on the socket. */
    readonly list: Effect.Effect<ReadonlyArray<string>, TerminalError>
  }
>() {}

/**
 * Maps a bead id to its tmux session name, one to one: `agent-<bead>`, with
 * `.` (which tmux rewrites to `_` in names, and reads as the pane separator in
 * targets) made `+`, a character bead ids cannot hold (`BEAD_ID`) and tmux 3.3a
 * keeps in names and in exact targets (`=agent-col+x:`). So `col.x` and `col_x`
 * never share a session. Bead ids are checked against `BEAD_ID` before they get here.
 */
export const sessionNameFor = (bead: string): string => `agent-${bead.replace(/\./g, "+")}`
