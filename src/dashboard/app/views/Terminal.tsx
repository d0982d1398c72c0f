import { FitAddon } from "@xterm/addon-fit"
import { Terminal as XTerm } from "@xterm/xterm"
import { useEffect, useRef, useState } from "preact/hooks"
import { wsUrl } from "../api.js"

interface Control {
  readonly me: string | null
  readonly holder: string | null
}

/**
 * The agent's live terminal: `@xterm/xterm` over the daemon's tty websocket
 * (`/v1/sessions/<bead>/tty`, a read-only tmux attach sized to this viewer).
 * The terminal follows its element's size (resize frames); keys go to the
 * agent only while this viewer holds control, taken with an explicit button.
 */
export const LiveTerminal = ({ bead }: { bead: string }) => {
  const host = useRef<HTMLDivElement>(null)
  const socketRef = useRef<WebSocket | null>(null)
  const controlRef = useRef<Control>({ me: null, holder: null })
  const [control, setControl] = useState<Control>({ me: null, holder: null })
  const [status, setStatus] = useState("connecting")
  const [problem, setProblem] = useState<string | null>(null)

  useEffect(() => {
    const element = host.current!
    const term = new XTerm({ convertEol: false, cursorBlink: false, fontSize: 13, scrollback: 2000, theme: { background: "#11151c", foreground: "#e6edf3" } })
    const fit = new FitAddon()
    term.loadAddon(fit)
    term.open(element)
    fit.fit()
    const send = (message: unknown) => {
      const socket = socketRef.current
      if (socket !== null && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message))
    }
    const setBoth = (next: Control) => {
      controlRef.current = next
      setControl(next)
    }
    const socket = new WebSocket(wsUrl(`/v1/sessions/${encodeURIComponent(bead)}/tty?cols=${term.cols}&rows=${term.rows}`))
    socket.binaryType = "arraybuffer"
    socketRef.current = socket
    socket.onopen = () => setStatus("live")
    socket.onmessage = (message) => {
      if (message.data instanceof ArrayBuffer) {
        term.write(new Uint8Array(message.data))
        return
      }
      const frame = JSON.parse(String(message.data)) as { type: string; viewer?: string; control?: string | null; by?: string; taken?: boolean; error?: string }
      if (frame.type === "hello") setBoth({ me: frame.viewer ?? null, holder: frame.control ?? null })
      else if (frame.type === "control") setBoth({ ...controlRef.current, holder: frame.taken ? (frame.by ?? null) : null })
      else if (frame.type === "error") setProblem(frame.error ?? "refused")
    }
    socket.onclose = (event) => {
      socketRef.current = null
      setStatus(event.reason === "" ? `closed (${event.code})` : `closed: ${event.reason}`)
    }
    const typed = term.onData((data) => {
      const { me, holder } = controlRef.current
      if (me !== null && holder === me) send({ type: "input", data })
    })
    let last = `${term.cols}x${term.rows}`
    const observer = new ResizeObserver(() => {
      fit.fit()
      const size = `${term.cols}x${term.rows}`
      if (size === last) return
      last = size
      send({ type: "resize", cols: term.cols, rows: term.rows })
    })
    observer.observe(element)
    return () => {
      observer.disconnect()
      typed.dispose()
      socket.close()
      term.dispose()
    }
  }, [bead])

  const holding = control.me !== null && control.holder === control.me
  const otherHolds = control.holder !== null && !holding
  const take = (on: boolean) => {
    setProblem(null)
    socketRef.current?.send(JSON.stringify({ type: "control", take: on }))
  }
  return (
    <div class="terminal-panel" data-control={holding ? "mine" : otherHolds ? "other" : "none"}>
      <div class="bar">
        <span class="muted" data-field="tty-status">
          terminal {status}
        </span>
        {holding ? (
          <button class="toggle on" onClick={() => take(false)}>
            Give back control
          </button>
        ) : (
          <button onClick={() => take(true)} disabled={otherHolds || status !== "live"}>
            Take control
          </button>
        )}
      </div>
      {otherHolds ? <div class="banner" role="status">Another viewer ({control.holder}) holds control of this terminal.</div> : null}
      {holding ? <div class="banner mine" role="status">You hold control: your keys go to the agent.</div> : null}
      {problem === null ? null : <div class="refusal">{problem}</div>}
      <div class="tty" ref={host} />
    </div>
  )
}
