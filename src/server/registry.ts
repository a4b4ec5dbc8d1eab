/**
 * The typed command registry (architecture.md R2): one handler per verb, each declaring the states it
 * is valid in, its argument count and whether its answer is multi-line. The command resolver
 * (command-resolver.ts) checks those once; handlers never re-check them. Verbs are looked up in
 * a fixed map, never built from input.
 */
import type { Pop3Verb as ProtocolVerb } from '../protocol/command.ts';
import type { CommandContext } from './context.ts';
import type { SessionState } from './state.ts';

/** The verbs the server implements: every RFC 1939/2449/2595/5034 keyword except APOP. */
export type Pop3Verb = Exclude<ProtocolVerb, 'APOP'>;

/** `without-argument`: multi-line without an argument, single-line with one (LIST, UIDL, AUTH). */
export type MultilineKind = 'always' | 'never' | 'without-argument';

export interface CommandHandler {
  readonly verb: Pop3Verb;
  readonly states: readonly SessionState[];
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly multiline: MultilineKind;
  /**
   * PASS takes the rest of the line as one argument (RFC 1939 §7: passwords may contain
   * spaces); everything else splits on spaces.
   */
  readonly restOfLine?: boolean;
  /** False hides the verb entirely (`-ERR Unknown command`), e.g. USER without a password backend. */
  available?(ctx: CommandContext): boolean;
  run(ctx: CommandContext, args: readonly string[]): void | Promise<void>;
}

/** Builds the registry from handlers; a duplicate verb is a programming error. */
export function createRegistry(handlers: readonly CommandHandler[]): ReadonlyMap<Pop3Verb, CommandHandler> {
  const map = new Map<Pop3Verb, CommandHandler>();
  for (const handler of handlers) {
    if (map.has(handler.verb)) throw new Error(`duplicate handler for ${handler.verb}`);
    map.set(handler.verb, Object.freeze(handler));
  }
  return map;
}

/** The handler for an input verb (any case), or undefined. */
export function lookup(
  registry: ReadonlyMap<Pop3Verb, CommandHandler>,
  verb: string,
): CommandHandler | undefined {
  return registry.get(verb.toUpperCase() as Pop3Verb);
}
