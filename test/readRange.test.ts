import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readFrom, readTail } from "../src/workspace/readRange.js"

describe("reading a growing file", () => {
  it("reads what was appended since an offset, bounded, and the tail", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "warden-range-")), "t.log")
    expect(readFrom(file, 0)).toBeNull()
    expect(readTail(file, 10).length).toBe(0)
    fs.writeFileSync(file, "hello ")
    const first = readFrom(file, 0)!
    expect(first.data.toString()).toBe("hello ")
    fs.appendFileSync(file, "world")
    expect(readFrom(file, first.data.length)!.data.toString()).toBe("world")
    expect(readFrom(file, 0, 3)!).toMatchObject({ size: 11 })
    expect(readFrom(file, 0, 3)!.data.toString()).toBe("hel")
    expect(readFrom(file, 11)!.data.length).toBe(0)
    expect(readTail(file, 5).toString()).toBe("world")
    expect(readTail(file, 100).toString()).toBe("hello world")
  })
})
