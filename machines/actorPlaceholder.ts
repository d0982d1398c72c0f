/**
 * The stand-in for an actor a machine declares and the daemon provides (`machine.provide()`): it throws at
 * once, naming the machine and the actor, so an unprovided effect fails loudly instead of doing nothing.
 */
export const notProvided = (machine: string, actor: string) => () => {
  throw new Error(`${machine}: actor "${actor}" is not provided; use machine.provide()`)
}
