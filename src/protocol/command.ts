/**
 * Commands: the serializer is the one gate between the client and the socket (architecture.md R8);
 * it refuses CR, LF and NUL in arguments and malformed verbs, so no input can inject a second
 * command. The parser is the server side's matching entry point (RFC 1939 §3, RFC 2449 §4).
 */
import { Pop3Error } from '../errors.ts';
import { hasLineBreakOrNul } from './line-safety.ts';

/** Keywords of RFC 1939, 2449, 2595 and 5034. Extensions may use other 3–4 letter verbs. */
export const POP3_VERBS = [
  'USER',
  'PASS',
  'APOP',
  'QUIT',
  'STAT',
  'LIST',
  'RETR',
  'DELE',
  'NOOP',
  'RSET',
  'TOP',
  'UIDL',
  'CAPA',
  'STLS',
  'AUTH',
] as const;
export type Pop3Verb = (typeof POP3_VERBS)[number];

const VERB = /^[A-Za-z]{3,4}$/;

function invalid(message: string): Pop3Error {
  return new Pop3Error('ERR_POP3_INVALID_ARGUMENT', message);
}

/**
 * Serializes `VERB arg1 arg2\r\n`. Arguments may not contain CR, LF, NUL, be empty, or (except
 * for the last one) contain a space. Throws ERR_POP3_INVALID_ARGUMENT; the message never
 * repeats the argument, which may be a secret.
 */
export function serializeCommand(verb: string, args: readonly string[] = [], maxLength = 255): Buffer {
  if (!VERB.test(verb)) throw invalid('a POP3 command keyword must be 3 or 4 ASCII letters');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length === 0) throw invalid(`argument ${i + 1} of ${verb.toUpperCase()} is empty`);
    if (hasLineBreakOrNul(arg)) {
      throw invalid(`argument ${i + 1} of ${verb.toUpperCase()} contains CR, LF or NUL; refused`);
    }
    if (i < args.length - 1 && arg.includes(' ')) {
      throw invalid(`argument ${i + 1} of ${verb.toUpperCase()} contains a space`);
    }
  }
  const line = Buffer.from(`${[verb.toUpperCase(), ...args].join(' ')}\r\n`, 'utf8');
  if (line.length > maxLength) {
    throw invalid(`${verb.toUpperCase()} would be ${line.length} octets; the limit is ${maxLength}`);
  }
  return line;
}

/**
 * Serializes one SASL response line (RFC 5034 §4): base64, `*` to cancel, or empty. Anything
 * that is not base64 is refused so it cannot smuggle a command.
 */
export function serializeSaslLine(response: string, maxLength = 64 * 1024): Buffer {
  if (response !== '*' && !/^[A-Za-z0-9+/]*={0,2}$/.test(response)) {
    throw invalid('a SASL response line must be base64, "*" or empty');
  }
  if (response.length + 2 > maxLength) throw invalid(`a SASL response would exceed ${maxLength} octets`);
  return Buffer.from(`${response}\r\n`, 'latin1');
}

export interface ParsedCommand {
  /** Upper-cased keyword. */
  readonly verb: string;
  /** Arguments split on single spaces. */
  readonly args: readonly string[];
  /** Everything after `VERB ` unsplit (PASS takes the whole rest, RFC 1939 §7). */
  readonly rest: string;
}

/**
 * Parses a command line (without CRLF) received by a server. Refuses NUL/CR, control
 * characters, a bad keyword, or a line longer than `maxLength`, with ERR_POP3_PROTOCOL.
 */
export function parseCommandLine(line: Buffer | string, maxLength = 255): ParsedCommand {
  const text = typeof line === 'string' ? line : line.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') + 2 > maxLength) {
    throw new Pop3Error('ERR_POP3_PROTOCOL', `command line longer than ${maxLength} octets`);
  }
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) {
    throw new Pop3Error('ERR_POP3_PROTOCOL', 'command line contains control characters');
  }
  const space = text.indexOf(' ');
  const verb = space === -1 ? text : text.slice(0, space);
  if (!VERB.test(verb)) throw new Pop3Error('ERR_POP3_PROTOCOL', 'unknown or malformed command keyword');
  const rest = space === -1 ? '' : text.slice(space + 1);
  const args = rest === '' ? [] : rest.split(' ');
  // PASS takes the whole rest of the line, spaces included (RFC 1939 §7).
  if (verb.toUpperCase() !== 'PASS' && args.some((a) => a === '')) {
    throw new Pop3Error('ERR_POP3_PROTOCOL', 'command arguments must be separated by single spaces');
  }
  return { verb: verb.toUpperCase(), args, rest };
}
