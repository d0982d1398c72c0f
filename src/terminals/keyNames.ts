/**
 * The key names Warden lets anyone press in an agent's terminal, checked
 * before tmux sees them. tmux's `send-keys` types a string it does not know
 * as a key literally, and reads a leading `-` as one of its own options
 * (`-t other`, `-N 2000`, `-X`, `-R`): so every key must be one that tmux's
 * key-string table (tmux 3.3a, `key-string.c`) names, and `send-keys` always
 * gets `--` before them. Used by the API, the CLI and both Terminals layers.
 */

/** Keyboard keys of tmux 3.3a's key-string table (mouse keys, `User<n>`, `Any`, `None` left out on purpose). */
const NAMED_KEYS: ReadonlyArray<string> = [
  ...Array.from({ length: 12 }, (_, i) => `F${i + 1}`),
  "IC",
  "Insert",
  "DC",
  "Delete",
  "Home",
  "End",
  "NPage",
  "PageDown",
  "PgDn",
  "PPage",
  "PageUp",
  "PgUp",
  "Tab",
  "BTab",
  "Space",
  "BSpace",
  "Enter",
  "Escape",
  "Up",
  "Down",
  "Left",
  "Right",
  "KP/",
  "KP*",
  "KP-",
  "KP+",
  "KP.",
  "KPEnter",
  ...Array.from({ length: 10 }, (_, i) => `KP${i}`)
]

/** tmux looks names up case-insensitively (`strcasecmp`): so does Warden. */
const NAMED = new Map(NAMED_KEYS.map((name) => [name.toLowerCase(), name]))

/** The printable ASCII characters tmux 3.3a has no Ctrl form of (`bind-key C-~` says "unknown key"); checked against tmux in the contract test. */
const NO_CTRL_FORM = new Set('"$%&*{|}~')

const MAX_KEY_LENGTH = 32

/** Every key name Warden accepts without a modifier (for messages and tests). */
export const keyNames: ReadonlyArray<string> = NAMED_KEYS

/** A printable character: not a control (C0, DEL, C1), not white space. */
const printable = (ch: string): boolean => /^[^\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}]$/u.test(ch)

/**
 * Why `key` is not a key Warden will press, or null when it is one: a name
 * from tmux's table or one printable character, optionally after `C-`, `M-`,
 * `S-` in any order.
 */
export const keyProblem = (key: string): string | null => {
  const shown = JSON.stringify(key)
  if (key.length === 0) return `an empty key name ("")`
  if (key.length > MAX_KEY_LENGTH) return `key ${shown.slice(0, 40)}... is too long to be a key name`
  let rest = key
  const modifiers = new Set<string>()
  // A modifier is a letter and a dash followed by more: "C-" alone or "-" alone is the key itself.
  while (rest.length > 2 && rest[1] === "-" && "CMS".includes(rest[0]!)) {
    modifiers.add(rest[0]!)
    rest = rest.slice(2)
  }
  const chars = [...rest]
  if (chars.length === 1) {
    const ch = chars[0]!
    if (!printable(ch)) {
      return `key ${shown} is a control or blank character: name it instead (Enter, Tab, Escape, Space, BSpace, or C-<letter>)`
    }
    if (modifiers.has("C") && NO_CTRL_FORM.has(ch)) return `key ${shown} is not a key tmux knows (there is no Ctrl form of ${JSON.stringify(ch)})`
    return null
  }
  if (NAMED.has(rest.toLowerCase())) return null
  if (modifiers.size === 0 && rest.startsWith("-")) {
    return `key ${shown} is not a key name (tmux would read it as an option of send-keys)`
  }
  return `key ${shown} is not a key name tmux knows (use a single character, or one of ${NAMED_KEYS.filter((k) => !/^(F\d|KP)/.test(k)).join(", ")}, F1-F12, KP0-KP9, with C-, M-, S- as modifiers)`
}

/** The first problem among `keys`, naming the key and its place, or null when every key is one. */
export const keysProblem = (keys: ReadonlyArray<string>): string | null => {
  for (const [i, key] of keys.entries()) {
    const problem = keyProblem(key)
    if (problem !== null) return keys.length === 1 ? problem : `${problem} (key ${i + 1} of ${keys.length})`
  }
  return null
}
