/**
 * Dot-stuffing for multi-line responses (RFC 1939 §3), one streaming Transform per direction
 * with state carried across chunk boundaries (architecture.md R9). Client, server and proxy share them.
 *
 * - {@link DotStuffer} (server/proxy): raw message → stuffed body + terminating `.CRLF`; bare LF
 *   becomes CRLF; a message without a final line end gets one.
 * - {@link DotUnstuffer} (client): wire body → message bytes; finds the terminator; the bytes
 *   after it (pipelined answers) are kept in {@link DotDecoder.push}'s result.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Pop3Error } from '../errors.ts';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const DOT_BUF = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const LF_BUF = Buffer.from('\n');
const TERMINATOR = Buffer.from('.\r\n');
const LF_DOT = Buffer.from('\n.');
const CR_BUF = Buffer.from('\r');

/** Streaming encoder state; usable without streams (the server writes its output directly). */
export class DotEncoder {
  #atLineStart = true;
  #lastWasCR = false;
  #any = false;

  /** Stuffed, CRLF-normalised bytes for `chunk` (zero-copy slices where possible). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const len = chunk.length;
    if (len === 0) return out;
    this.#any = true;
    let start = 0;
    let i = 0;
    while (i < len) {
      if (this.#atLineStart) {
        this.#atLineStart = false;
        if (chunk[i] === DOT) {
          if (i > start) out.push(chunk.subarray(start, i));
          out.push(DOT_BUF);
          start = i;
        }
      }
      const lf = chunk.indexOf(LF, i);
      if (lf === -1) break;
      const prevCR = lf > 0 ? chunk[lf - 1] === CR : this.#lastWasCR;
      if (!prevCR) {
        if (lf > start) out.push(chunk.subarray(start, lf));
        out.push(CRLF);
        start = lf + 1;
      }
      this.#atLineStart = true;
      this.#lastWasCR = false;
      i = lf + 1;
    }
    if (!this.#atLineStart) this.#lastWasCR = chunk[len - 1] === CR;
    if (start < len) out.push(chunk.subarray(start));
    return out;
  }

  /** The bytes that end the body: a line end when the message lacked one, then `.CRLF`. */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.#any && !this.#atLineStart) out.push(this.#lastWasCR ? LF_BUF : CRLF);
    out.push(TERMINATOR);
    this.#atLineStart = true;
    this.#lastWasCR = false;
    this.#any = false;
    return out;
  }
}

/** Transform: raw message bytes in, dot-stuffed body with its terminating `.CRLF` out. */
export class DotStuffer extends Transform {
  readonly #encoder = new DotEncoder();

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    for (const part of this.#encoder.push(chunk)) this.push(part);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    for (const part of this.#encoder.end()) this.push(part);
    callback();
  }
}

enum S {
  LineStart = 0,
  Mid = 1,
  Dot = 2,
  DotCR = 3,
  Done = 4,
}

export interface DotDecodeResult {
  /** Message bytes decoded from this chunk (slices of it). */
  readonly body: Buffer[];
  /** True once the terminating `.CRLF` (or tolerated `.LF`) was seen. */
  readonly done: boolean;
  /** Bytes after the terminator (the next pipelined answer), empty if not done. */
  readonly rest: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * Streaming decoder: strips the stuffed leading dot of each line and finds the terminator.
 * Line ends are kept as sent. `maxSize` bounds the decoded size (ERR_POP3_MESSAGE_TOO_LARGE).
 */
export class DotDecoder {
  #state: S = S.LineStart;
  #size = 0;
  readonly #maxSize: number;

  constructor(maxSize = Number.MAX_SAFE_INTEGER) {
    this.#maxSize = maxSize;
  }

  /** Decoded octets so far (terminator excluded). */
  get size(): number {
    return this.#size;
  }

  get done(): boolean {
    return this.#state === S.Done;
  }

  /**
   * Decodes `chunk`. Only the places where a line starts with a dot are visited (one
   * `indexOf("\n.")` per stuffed line and per terminator, not one step per line); the spans
   * between them are returned as slices of `chunk`, and `chunk` itself when nothing was removed.
   */
  push(chunk: Buffer): DotDecodeResult {
    if (this.#state === S.Done) return { body: [], done: true, rest: chunk };
    const body: Buffer[] = [];
    const len = chunk.length;
    let i = 0;
    let start = 0; // start of the pending output slice
    while (i < len) {
      const state = this.#state;
      if (state === S.Mid) {
        // The next line that starts with a dot: stuffing or the terminator.
        const at = chunk.indexOf(LF_DOT, i);
        if (at === -1) {
          // A chunk ending in LF leaves the next chunk at a line start.
          if (chunk[len - 1] === LF) this.#state = S.LineStart;
          break;
        }
        i = at + 1;
        this.#state = S.LineStart;
      } else if (state === S.LineStart) {
        if (chunk[i] === DOT) {
          this.#emit(body, chunk, start, i);
          i++;
          start = i;
          this.#state = S.Dot;
        } else {
          this.#state = S.Mid;
        }
      } else if (state === S.Dot) {
        const b = chunk[i];
        if (b === CR) {
          i++;
          start = i;
          this.#state = S.DotCR;
        } else if (b === LF) {
          this.#state = S.Done;
          return this.#finish(body, chunk.subarray(i + 1));
        } else {
          // The stuffed dot is dropped; this byte starts the line's content.
          this.#state = S.Mid;
        }
      } else {
        // S.DotCR
        if (chunk[i] === LF) {
          this.#state = S.Done;
          return this.#finish(body, chunk.subarray(i + 1));
        }
        // "." CR <other>: the dot was stuffing, the CR is content.
        body.push(CR_BUF);
        this.#size += 1;
        this.#state = S.Mid;
      }
    }
    if (this.#state === S.Mid || this.#state === S.LineStart) this.#emit(body, chunk, start, len);
    this.#check();
    return { body, done: false, rest: EMPTY };
  }

  #emit(body: Buffer[], chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    body.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
    this.#size += to - from;
  }

  #finish(body: Buffer[], rest: Buffer): DotDecodeResult {
    this.#check();
    return { body, done: true, rest };
  }

  #check(): void {
    if (this.#size > this.#maxSize) {
      throw new Pop3Error(
        'ERR_POP3_MESSAGE_TOO_LARGE',
        `a message exceeded ${this.#maxSize} octets; raise limits.maxMessageSize to fetch it`,
      );
    }
  }
}

/**
 * Transform: wire body in (what follows the `+OK` of RETR/TOP), message bytes out. Ends itself
 * at the terminator; bytes after it are kept in {@link DotUnstuffer.trailing}. Ending the input
 * before the terminator is ERR_POP3_CLOSED.
 */
export class DotUnstuffer extends Transform {
  readonly #decoder: DotDecoder;
  #trailing: Buffer[] = [];

  constructor(options: { maxSize?: number } = {}) {
    super();
    this.#decoder = new DotDecoder(options.maxSize);
  }

  /** Bytes received after the terminator. */
  get trailing(): Buffer {
    return Buffer.concat(this.#trailing);
  }

  /** True once the terminator was seen. */
  get terminated(): boolean {
    return this.#decoder.done;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.#decoder.done) {
      this.#trailing.push(chunk);
      callback();
      return;
    }
    let result: DotDecodeResult;
    try {
      result = this.#decoder.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    for (const part of result.body) this.push(part);
    if (result.done && result.rest.length > 0) this.#trailing.push(result.rest);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#decoder.done) {
      callback(
        new Pop3Error('ERR_POP3_CLOSED', 'the multi-line response ended before its terminating "." line'),
      );
      return;
    }
    callback();
  }
}
