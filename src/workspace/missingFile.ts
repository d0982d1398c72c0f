/**
 * Whether a file-system error says only that the entry is not there (ENOENT,
 * or ENOTDIR for a path through a file): the one failure most reads of the
 * workspace expect. Anything else (no permission, I/O) is a real problem.
 */
export const isMissing = (error: unknown): boolean => {
  const code = (error as NodeJS.ErrnoException | null)?.code
  return code === "ENOENT" || code === "ENOTDIR"
}
