/**
 * Multi-line responses read line by line (LIST, UIDL, CAPA; RFC 1939 §3): collects lines up
 * to the terminating `.`, strips the stuffed leading dot, and bounds the total size.
 * Message bodies (RETR, TOP) use the streaming {@link DotDecoder} instead. The server side's
 * {@link formatMultiline} builds such an answer and refuses CR, LF and NUL inside a line.
 */
import { Pop3Error } from '../errors.ts';
import { refuseLineBreak } from './line-safety.ts';
import { formatStatusLine } from './response.ts';

/**
 * Formats a whole multi-line answer (server side, RFC 1939 §3): `+OK first`, each line
 * dot-stuffed, then the terminating `.`. A line holding CR, LF or NUL is refused
 * (ERR_POP3_INVALID_ARGUMENT) before anything is returned, so no half answer is written.
 *
 * @example formatMultiline('2 messages', ['1 120', '.x']) // '+OK 2 messages\r\n1 120\r\n..x\r\n.\r\n'
 */
export function formatMultiline(first: string, lines: Iterable<string>): string {
  let out = formatStatusLine('ok', first);
  for (const line of lines) {
    refuseLineBreak(line, 'a multi-line answer line');
    out += line.startsWith('.') ? `.${line}\r\n` : `${line}\r\n`;
  }
  return `${out}.\r\n`;
}

export class MultilineCollector {
  readonly #max: number;
  readonly #lines: string[] = [];
  #size = 0;
  #done = false;

  constructor(maxSize: number) {
    this.#max = maxSize;
  }

  get done(): boolean {
    return this.#done;
  }

  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Feeds one line (without CRLF). Returns true once the terminator was seen. */
  push(line: Buffer): boolean {
    if (this.#done) throw new Pop3Error('ERR_POP3_PROTOCOL', 'line after the end of a multi-line response');
    if (line.length === 1 && line[0] === 0x2e) {
      this.#done = true;
      return true;
    }
    this.#size += line.length + 2;
    if (this.#size > this.#max) {
      throw new Pop3Error(
        'ERR_POP3_RESPONSE_TOO_LARGE',
        `a multi-line response exceeded ${this.#max} octets; raise limits.maxMultilineResponse if expected`,
      );
    }
    const body = line[0] === 0x2e ? line.subarray(1) : line;
    this.#lines.push(body.toString('utf8'));
    return false;
  }
}

/** One `n size` line of LIST, or `n uid` of UIDL (RFC 1939 §5, §7). */
export interface ScanListing {
  readonly number: number;
  readonly size: number;
}
export interface UniqueIdListing {
  readonly number: number;
  readonly uid: string;
}

function protocolError(what: string): Pop3Error {
  return new Pop3Error('ERR_POP3_PROTOCOL', `the server sent a malformed ${what}`);
}

const POSITIVE = /^[1-9][0-9]{0,15}$/;
const NON_NEGATIVE = /^(?:0|[1-9][0-9]{0,15})$/;

/** Parses `n size` (LIST lines and the single-message `+OK n size` answer). */
export function parseScanListing(text: string): ScanListing {
  const [n, size] = text.trim().split(/ +/);
  if (n === undefined || size === undefined || !POSITIVE.test(n) || !NON_NEGATIVE.test(size)) {
    throw protocolError('scan listing');
  }
  return { number: Number(n), size: Number(size) };
}

/** Parses `n uid`; the UID is 1–70 characters in 0x21–0x7E (RFC 1939 §7). */
export function parseUniqueIdListing(text: string): UniqueIdListing {
  const [n, uid] = text.trim().split(/ +/);
  if (n === undefined || uid === undefined || !POSITIVE.test(n) || !/^[\x21-\x7e]{1,70}$/.test(uid)) {
    throw protocolError('unique-id listing');
  }
  return { number: Number(n), uid };
}

/** Parses the STAT answer text `count size`. */
export function parseStat(text: string): { count: number; size: number } {
  const [count, size] = text.trim().split(/ +/);
  if (count === undefined || size === undefined || !NON_NEGATIVE.test(count) || !NON_NEGATIVE.test(size)) {
    throw protocolError('STAT answer');
  }
  return { count: Number(count), size: Number(size) };
}
