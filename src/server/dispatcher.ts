/**
 * Parses one command line and runs its handler after the checks every handler declares in the
 * registry: known verb, valid state, argument count. Handlers never re-check them. Malformed
 * input gets a well-formed `-ERR` and is never echoed back or logged raw.
 */
import { isPopgateError } from '../errors.ts';
import { type ParsedCommand, parseCommandLine } from '../protocol/command.ts';
import { lookup, type Pop3Verb } from './registry.ts';
import type { Pop3Session } from './session.ts';

const AUTH_PREFIX = /^auth /i;

/** Dispatches `line`; returns the verb that ran (for latency metrics) or undefined. */
export async function dispatch(session: Pop3Session, line: Buffer): Promise<Pop3Verb | undefined> {
  const { limits } = session.options;
  session.stats.commands += 1;
  // AUTH may carry an initial response as long as the SASL cap (RFC 5034 §4 lets clients send
  // it on the command line; many do even past 255 octets). Everything else has the command cap.
  const isAuth = AUTH_PREFIX.test(line.subarray(0, 5).toString('latin1'));
  const maxLength = isAuth ? limits.saslResponseLength + 64 : limits.commandLineLength;
  if (line.length + 2 > maxLength) {
    session.err('Command line too long; closing.');
    session.close('limit');
    return undefined;
  }
  let parsed: ParsedCommand;
  try {
    parsed = parseCommandLine(line, maxLength);
  } catch {
    session.badCommands += 1;
    session.err('Malformed command.');
    return undefined;
  }
  const handler = lookup(session.shared.registry, parsed.verb);
  if (handler === undefined || handler.available?.(session) === false) {
    session.badCommands += 1;
    session.err('Unknown command.');
    return undefined;
  }
  if (!handler.states.includes(session.state)) {
    session.err(`${handler.verb} is not valid in the ${session.state} state.`);
    return undefined;
  }
  const args = handler.restOfLine ? (parsed.rest === '' ? [] : [parsed.rest]) : parsed.args;
  if (args.length < handler.minArgs || args.length > handler.maxArgs) {
    session.err(`Wrong number of arguments for ${handler.verb}.`);
    return undefined;
  }
  try {
    await handler.run(session, args);
  } catch (error) {
    session.shared.logger.error(
      { session: session.id, verb: handler.verb, code: isPopgateError(error) ? error.code : undefined },
      'command failed',
    );
    if (session.answered) {
      // A multi-line answer may be half written: the only safe move is to close.
      session.close('error');
    } else {
      session.err('Temporary failure; try again.', 'SYS/TEMP');
    }
  }
  return handler.verb;
}
