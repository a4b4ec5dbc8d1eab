/**
 * Turns one received command line into the handler to run and its arguments, or a refusal,
 * after the checks every handler declares in the registry (architecture.md R2): the line's length (an
 * `AUTH` line has the SASL bound), well-formedness, a known and offered verb, a valid state, the
 * argument count. Handlers never re-check them. Pure: no socket and no session; the session
 * answers, counts and closes from the result. Refusal texts never echo the input.
 */
import { type ParsedCommand, parseCommandLine } from '../protocol/command.ts';
import { authLineLength, type ServerLimits } from './limits.ts';
import { type CommandHandler, lookup, type Pop3Verb } from './registry.ts';
import type { SessionState } from './state.ts';

/** Why a line is not run. */
export type RefusalReason = 'too-long' | 'malformed' | 'unknown' | 'wrong-state' | 'wrong-arguments';

export interface CommandRefusal {
  readonly kind: 'refuse';
  readonly reason: RefusalReason;
  /** The `-ERR` text to answer. */
  readonly text: string;
  /** Counts toward the malformed/unknown command cap (`MAX_BAD_COMMANDS`). */
  readonly bad: boolean;
  /** The session closes after answering (a limit was broken). */
  readonly fatal: boolean;
}

export interface CommandToRun {
  readonly kind: 'run';
  readonly handler: CommandHandler;
  readonly args: readonly string[];
}

export type Resolution = CommandToRun | CommandRefusal;

const AUTH_PREFIX = /^auth /i;

function refuse(reason: RefusalReason, text: string, bad = false, fatal = false): CommandRefusal {
  return { kind: 'refuse', reason, text, bad, fatal };
}

/**
 * Resolves `line` (a command line without CRLF) against `registry` in `state`. `isAvailable`
 * is the handler's own `available` check on this session (USER and PASS without a password
 * backend); a handler it refuses is answered as unknown.
 *
 * @example resolveCommand(COMMAND_REGISTRY, 'AUTHORIZATION', Buffer.from('STAT'), DEFAULT_LIMITS)
 * // { kind: 'refuse', reason: 'wrong-state', text: 'STAT is not valid in the AUTHORIZATION state.', ... }
 */
export function resolveCommand(
  registry: ReadonlyMap<Pop3Verb, CommandHandler>,
  state: SessionState,
  line: Buffer,
  limits: Pick<ServerLimits, 'commandLineLength' | 'maxSaslResponse'>,
  isAvailable: (handler: CommandHandler) => boolean = () => true,
): Resolution {
  // AUTH may carry an initial response as long as the SASL cap (RFC 5034 §4 lets clients send
  // it on the command line; many do even past 255 octets). Everything else has the command cap.
  const isAuth = AUTH_PREFIX.test(line.subarray(0, 5).toString('latin1'));
  const maxLength = isAuth ? authLineLength(limits) : limits.commandLineLength;
  if (line.length + 2 > maxLength) return refuse('too-long', 'Command line too long; closing.', false, true);
  let parsed: ParsedCommand;
  try {
    parsed = parseCommandLine(line, maxLength);
  } catch {
    return refuse('malformed', 'Malformed command.', true);
  }
  const handler = lookup(registry, parsed.verb);
  if (handler === undefined || !isAvailable(handler)) return refuse('unknown', 'Unknown command.', true);
  if (!handler.states.includes(state)) {
    return refuse('wrong-state', `${handler.verb} is not valid in the ${state} state.`);
  }
  const args = handler.restOfLine ? (parsed.rest === '' ? [] : [parsed.rest]) : parsed.args;
  if (args.length < handler.minArgs || args.length > handler.maxArgs) {
    return refuse('wrong-arguments', `Wrong number of arguments for ${handler.verb}.`);
  }
  return { kind: 'run', handler, args };
}
