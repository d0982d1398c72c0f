import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

/**
 * A file-backed layer for a contract suite: `fresh` opens a service on a new place under a scratch
 * folder, `reopen` opens a new service on the same place, as a restarted daemon does. `place` says
 * where under the folder (`root`), `scratch` gives another new place for a suite's own cases.
 */
export const fileBacked = <S>(name: string, place: (dir: string) => string, open: (place: string) => S) => {
  const root = fs.mkdtempSync(path.join(tmpdir(), `warden-${name}-`))
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
  const places = new Map<S, string>()
  let n = 0
  const scratch = () => path.join(root, `p${++n}`)
  const track = (where: string) => {
    const service = open(where)
    places.set(service, where)
    return service
  }
  return {
    root,
    scratch,
    fresh: () => track(place(scratch())),
    reopen: (service: S) => track(places.get(service)!)
  }
}
