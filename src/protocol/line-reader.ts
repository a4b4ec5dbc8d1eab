/**
 * Chunks in, lines out, with a hard maximum line length (architecture.md R7). Lines end with CRLF;
 * a bare LF is tolerated (RFC 1939 requires CRLF, some servers slip). Breaking the limit is
 * terminal: the reader refuses every later call with the same error, and the rejected bytes are
 * never parsed.
 */
import { Pop3Error } from '../errors.ts';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export interface LineReaderOptions {
  /** Longest line in octets, terminator included. */
  maxLineLength: number;
}

export class LineReader {
  readonly #max: number;
  #buf: Buffer = EMPTY;
  #pos = 0;
  /** Offset in #buf up to which we know there is no LF. */
  #scanned = 0;
  #failed: Pop3Error | undefined;

  constructor(options: LineReaderOptions) {
    this.#max = options.maxLineLength;
  }

  /** Octets received but not yet returned as a line. */
  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  /** Append received bytes. */
  push(chunk: Buffer): void {
    if (this.#failed) throw this.#failed;
    if (chunk.length === 0) return;
    if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
      this.#pos = 0;
      this.#scanned = 0;
    } else {
      const rest = this.#buf.subarray(this.#pos);
      this.#scanned -= this.#pos;
      this.#buf = Buffer.concat([rest, chunk]);
      this.#pos = 0;
    }
  }

  /**
   * The next complete line without its terminator, or undefined when no full line is buffered.
   * Throws ERR_POP3_LINE_TOO_LONG (terminal) when a line exceeds the limit.
   */
  readLine(): Buffer | undefined {
    if (this.#failed) throw this.#failed;
    const from = Math.max(this.#pos, this.#scanned);
    const lf = this.#buf.indexOf(LF, from);
    if (lf === -1) {
      this.#scanned = this.#buf.length;
      if (this.#buf.length - this.#pos > this.#max) this.#fail();
      return undefined;
    }
    if (lf + 1 - this.#pos > this.#max) this.#fail();
    const end = lf > this.#pos && this.#buf[lf - 1] === CR ? lf - 1 : lf;
    const line = this.#buf.subarray(this.#pos, end);
    this.#pos = lf + 1;
    this.#scanned = this.#pos;
    return line;
  }

  /** Removes and returns every buffered byte not yet returned (mode switch, STLS check). */
  takeBuffered(): Buffer {
    if (this.#failed) throw this.#failed;
    const rest = this.#buf.subarray(this.#pos);
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scanned = 0;
    return rest;
  }

  #fail(): never {
    this.#failed = new Pop3Error(
      'ERR_POP3_LINE_TOO_LONG',
      `a line exceeded ${this.#max} octets; the connection must be closed (raise limits.maxLineLength if the peer is trusted)`,
    );
    this.#buf = EMPTY;
    this.#pos = 0;
    throw this.#failed;
  }
}

/** All complete lines of `chunks` (test and tooling helper); the remainder is returned apart. */
export function splitLines(
  chunks: Iterable<Buffer>,
  options: LineReaderOptions,
): { lines: Buffer[]; rest: Buffer } {
  const reader = new LineReader(options);
  const lines: Buffer[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let line = reader.readLine(); line !== undefined; line = reader.readLine()) lines.push(line);
  }
  return { lines, rest: reader.takeBuffered() };
}
