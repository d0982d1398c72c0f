import { createActor, type Actor } from "xstate"
import type { Outcome } from "../../machines/agentSession.types.js"
import { sessionSystemId } from "../../machines/supervisor.machine.js"
import type { HistoryEntry, SessionView } from "../records/buildRecords.js"
import type { DispatchSpec } from "./dispatchSpec.js"
import { provideSession, type SessionServices } from "./sessionActors.js"
import { SessionRecorder, type SessionObserver } from "./sessionRecorder.js"
import type { EffectRunner } from "./effectRunner.js"

export type { SessionObserver } from "./sessionRecorder.js"

/**
 * One bead's session on its own, in the foreground CLI: a session actor with
 * no parent (nothing else admits it, so a queued session starts at once),
 * recorded by a `SessionRecorder`. The daemon runs sessions as children of its
 * root supervisor instead (see `src/daemon/supervisionTree.ts`).
 */
export class SessionRunner {
  readonly actor: Actor<ReturnType<typeof provideSession>>
  readonly finished: Promise<Outcome>
  private readonly recorder: SessionRecorder

  constructor(
    readonly spec: DispatchSpec,
    runtime: EffectRunner<SessionServices>,
    observer: SessionObserver = {}
  ) {
    this.recorder = new SessionRecorder(spec, runtime, observer)
    const log = observer.log ?? (() => undefined)
    const logic = provideSession(spec, runtime, { records: () => this.recorder.records(), log })
    // The same system id as the daemon's child of this bead, so its machine history reads the same.
    this.actor = createActor(logic, {
      input: { bead: spec.bead, policy: spec.profile.policy },
      systemId: sessionSystemId(spec.bead),
      ...(observer.inspect === undefined ? {} : { inspect: observer.inspect })
    })
    this.finished = new Promise((resolve, reject) => {
      this.actor.subscribe({
        next: (snapshot) => {
          const { entered, view } = this.recorder.observe(snapshot)
          if (entered && view.state === "queued") this.actor.send({ type: "ADMIT", at: Date.now() })
          if (snapshot.status === "done") this.recorder.flush().then(() => resolve(snapshot.output?.outcome ?? "failed"), reject)
        },
        error: (error) => this.recorder.flush().then(() => reject(error), reject)
      })
    })
  }

  get history(): ReadonlyArray<HistoryEntry> {
    return this.recorder.history
  }

  /** The session as the records see it now. */
  view(): SessionView {
    return this.recorder.view()
  }

  records() {
    return this.recorder.records()
  }

  start(): this {
    // Starting notifies the subscription with the initial snapshot: the recorder sees `queued` from there.
    this.actor.start()
    return this
  }

  cancel(reason = "cancelled by the operator"): void {
    this.actor.send({ type: "CANCEL", at: Date.now(), reason })
  }

  /** Resolves once every record write requested so far is on disk. */
  flush(): Promise<void> {
    return this.recorder.flush()
  }
}
