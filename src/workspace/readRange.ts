import * as fs from "node:fs"

/**
 * The bytes of a growing file from `offset` on (at most `maxBytes`), and the
 * file's size then; null when the file is not there. Transcripts and the
 * signal log are read this way as they grow.
 */
export const readFrom = (file: string, offset: number, maxBytes = Number.POSITIVE_INFINITY): { readonly data: Buffer; readonly size: number } | null => {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch {
    // not there (yet): the caller reads it again later
    return null
  }
  const length = Math.max(0, Math.min(size - offset, maxBytes))
  const data = Buffer.alloc(length)
  if (length === 0) return { data, size }
  const fd = fs.openSync(file, "r")
  try {
    fs.readSync(fd, data, 0, length, offset)
  } finally {
    fs.closeSync(fd)
  }
  return { data, size }
}

/** The last `maxBytes` of a file (empty when it is not there). */
export const readTail = (file: string, maxBytes: number): Buffer => {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch {
    // not there (yet): an empty tail, as documented
    return Buffer.alloc(0)
  }
  const offset = Math.max(0, size - maxBytes)
  return readFrom(file, offset, maxBytes)?.data ?? Buffer.alloc(0)
}
