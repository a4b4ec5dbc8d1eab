/**
 * Status-line parsing: `+OK`, `-ERR`, and the SASL continuation `+ <base64>` (RFC 1939 §3,
 * RFC 5034 §4), with RFC 2449 §8 extended response codes (`-ERR [SYS/TEMP] text`); and their
 * server-side formatting, which refuses CR, LF and NUL in any text it puts on a line.
 */
import { Pop3Error } from '../errors.ts';
import { hasLineBreakOrNul, refuseLineBreak } from './line-safety.ts';

/** Response codes popgate knows (RFC 2449 §8.1, RFC 3206). Others are kept as received. */
export const KNOWN_RESPONSE_CODES = ['AUTH', 'SYS/TEMP', 'SYS/PERM', 'IN-USE', 'LOGIN-DELAY'] as const;
export type KnownResponseCode = (typeof KNOWN_RESPONSE_CODES)[number];

export interface Pop3StatusResponse {
  readonly kind: 'ok' | 'err';
  /**
   * The RFC 2449 response code without brackets, upper-cased (`SYS/TEMP`), or undefined. Parsed
   * only when it follows the status indicator directly, as RFC 2449 §8 requires.
   */
  readonly code: string | undefined;
  /** Text after the status indicator and response code, capped for logs. */
  readonly text: string;
}

export interface Pop3ContinuationResponse {
  readonly kind: 'continue';
  /** The base64 challenge after `+ `, possibly empty. */
  readonly challenge: string;
}

export type Pop3Response = Pop3StatusResponse | Pop3ContinuationResponse;

const RESP_CODE = /^\[([A-Za-z0-9-]+(?:\/[A-Za-z0-9-]+)*)\](?: |$)/;

/** Cap untrusted text and drop control characters so it is safe in a log line or message. */
export function capText(text: string, max: number): string {
  const clean = text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function decode(line: Buffer | string): string {
  return typeof line === 'string' ? line : line.toString('latin1');
}

/**
 * Parses one status line (without CRLF). `allowContinuation` accepts `+ challenge` (only
 * meaningful during AUTH). Anything else is ERR_POP3_PROTOCOL.
 */
export function parseResponseLine(
  line: Buffer | string,
  options: { allowContinuation?: boolean; maxText?: number } = {},
): Pop3Response {
  const text = decode(line);
  const maxText = options.maxText ?? 1024;
  if (options.allowContinuation && (text === '+' || text.startsWith('+ '))) {
    return { kind: 'continue', challenge: text.length > 2 ? text.slice(2).trim() : '' };
  }
  let kind: 'ok' | 'err';
  let rest: string;
  if (text.startsWith('+OK') && (text.length === 3 || text[3] === ' ')) {
    kind = 'ok';
    rest = text.slice(4);
  } else if (text.startsWith('-ERR') && (text.length === 4 || text[4] === ' ')) {
    kind = 'err';
    rest = text.slice(5);
  } else {
    throw new Pop3Error(
      'ERR_POP3_PROTOCOL',
      'the server sent a line that is not a POP3 status response; check host and port (is it a POP3 server?)',
      { serverText: capText(text, 200) },
    );
  }
  const match = RESP_CODE.exec(rest);
  let code: string | undefined;
  if (match) {
    code = match[1]!.toUpperCase();
    rest = rest.slice(match[0].length);
  }
  return { kind, code, text: capText(rest, maxText) };
}

/** Parses a status line that must be `+OK` or `-ERR` (no continuation). */
export function parseStatusLine(line: Buffer | string, maxText?: number): Pop3StatusResponse {
  return parseResponseLine(line, maxText === undefined ? {} : { maxText }) as Pop3StatusResponse;
}

/**
 * Whether `code` is, or is below, `prefix` in the RFC 2449 hierarchy (`SYS/TEMP/X` is a
 * `SYS/TEMP`). Unknown sub-levels are treated as their known parent (RFC 2449 §8).
 */
export function responseCodeIs(code: string | undefined, prefix: string): boolean {
  if (code === undefined) return false;
  return code === prefix || code.startsWith(`${prefix}/`);
}

/** The known code `code` falls under, or undefined for unknown codes. */
export function classifyResponseCode(code: string | undefined): KnownResponseCode | undefined {
  if (code === undefined) return undefined;
  for (const known of KNOWN_RESPONSE_CODES) if (responseCodeIs(code, known)) return known;
  return undefined;
}

/** Formats a status line (server side). Refuses CR/LF/NUL in the text (ERR_POP3_INVALID_ARGUMENT). */
export function formatStatusLine(kind: 'ok' | 'err', text = '', code?: string): string {
  if (hasLineBreakOrNul(text) || (code !== undefined && !/^[A-Z0-9-]+(?:\/[A-Z0-9-]+)*$/i.test(code))) {
    throw new Pop3Error(
      'ERR_POP3_INVALID_ARGUMENT',
      'a status line text or code contains invalid characters',
    );
  }
  const head = kind === 'ok' ? '+OK' : '-ERR';
  const parts = [head];
  if (code) parts.push(`[${code}]`);
  if (text) parts.push(text);
  return `${parts.join(' ')}\r\n`;
}

/**
 * Formats a SASL continuation `+ data` (server side, RFC 5034 §4); `data` is base64 or empty.
 * Refuses CR/LF/NUL (ERR_POP3_INVALID_ARGUMENT).
 */
export function formatContinuation(data: string): string {
  refuseLineBreak(data, 'a SASL continuation');
  return `+ ${data}\r\n`;
}
