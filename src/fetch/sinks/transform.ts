/**
 * The one streaming conversion from the POP3 wire form (CRLF, already dot-unstuffed) to local
 * storage form: CRLF -> LF (Maildir, mbox and delivery commands all expect LF on Unix), mboxrd
 * `From ` quoting for mbox (a line matching `^>*From ` gains one `>`), byte counting, and a
 * sniff of the header section for `Message-ID`. State is carried across chunk boundaries, so any
 * split of the input gives the same output (a unit test checks every split).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { CrlfToLf, crlfToLf } from '../../internal/crlf.ts';

const LF = 10;
const GT = 62;
const FROM = Buffer.from('From ');
const QUOTE = Buffer.from('>');
const HEADER_CAP = 64 * 1024;

export interface LocalFormOptions {
  /** Convert CRLF to LF (default true). */
  readonly lf?: boolean;
  /** Apply mboxrd `>From ` quoting (default false). */
  readonly mboxQuote?: boolean;
}

/** Parses `Message-ID` out of a raw header block (unfolding continuation lines). */
export function parseMessageId(header: string): string | undefined {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  const match = /^message-id[ \t]*:[ \t]*(.*?)[ \t]*\r?$/im.exec(unfolded);
  const value = match?.[1]?.trim();
  return value ? value.slice(0, 998) : undefined;
}

export class LocalForm extends Transform {
  readonly #lf: boolean;
  readonly #quote: boolean;
  readonly #toLf = new CrlfToLf();
  /** At a line start whose `From ` quoting is not decided yet. */
  #deciding = true;
  /** Bytes of `From ` matched after the line's `>` run (0..4), held back. */
  #fromMatched = 0;
  #header: Buffer[] = [];
  #headerTail: Buffer = Buffer.alloc(0);
  #headerBytes = 0;
  #headerDone = false;
  #lastByte = -1;
  bytes = 0;
  messageId: string | undefined;

  constructor(options: LocalFormOptions = {}) {
    super();
    this.#lf = options.lf ?? true;
    this.#quote = options.mboxQuote ?? false;
  }

  /** Whether the output so far ends with a newline (mbox needs one before the separator). */
  get endsWithNewline(): boolean {
    return this.#lastByte === LF;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#emitQuoted(this.#lf ? this.#toLf.feed(chunk) : chunk, false);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#emitQuoted(this.#lf ? this.#toLf.end() : Buffer.alloc(0), true);
    if (!this.#headerDone) this.#finishHeader();
    callback();
  }

  /**
   * mboxrd quoting in one pass with O(1) state: the `>` run at a line start is passed on at once
   * (a `>` added anywhere in that run gives the same bytes as one added before it), and only the
   * up to four bytes of a partial `From ` are held back, as a count (they are known to be a
   * prefix of `From `). Holding the whole undecided line instead made a long line of `>` cost
   * quadratic time and unbounded memory.
   */
  #emitQuoted(input: Buffer, final: boolean): void {
    if (!this.#quote) {
      if (input.length > 0) this.#out(input);
      return;
    }
    const pieces: Buffer[] = [];
    const buf = input;
    let pos = 0;
    while (pos < buf.length) {
      if (!this.#deciding) {
        const nl = buf.indexOf(LF, pos);
        const end = nl === -1 ? buf.length : nl + 1;
        pieces.push(buf.subarray(pos, end));
        pos = end;
        if (nl !== -1) {
          this.#deciding = true;
          this.#fromMatched = 0;
        }
        continue;
      }
      if (this.#fromMatched === 0) {
        const start = pos;
        while (pos < buf.length && buf[pos] === GT) pos++;
        if (pos > start) pieces.push(buf.subarray(start, pos));
        if (pos === buf.length) break;
      }
      while (pos < buf.length && this.#fromMatched < FROM.length && buf[pos] === FROM[this.#fromMatched]) {
        pos++;
        this.#fromMatched++;
      }
      if (this.#fromMatched === FROM.length) {
        pieces.push(QUOTE, FROM);
      } else if (pos === buf.length) {
        break; // a partial `From ` at the end of the input: decided by the next chunk
      } else if (this.#fromMatched > 0) {
        pieces.push(FROM.subarray(0, this.#fromMatched));
      }
      this.#deciding = false;
      this.#fromMatched = 0;
    }
    if (final && this.#deciding && this.#fromMatched > 0) {
      pieces.push(FROM.subarray(0, this.#fromMatched));
      this.#fromMatched = 0;
    }
    if (pieces.length > 0) this.#out(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
  }

  /** Bytes the quoting holds back (a partial `From `, so at most 4); for tests. */
  get quoteHeldBack(): number {
    return this.#fromMatched;
  }

  #out(piece: Buffer): void {
    if (piece.length === 0) return;
    this.bytes += piece.length;
    this.#lastByte = piece[piece.length - 1] ?? this.#lastByte;
    if (!this.#headerDone) {
      // Search the new piece plus the last 3 bytes before it, so the work stays linear however
      // small the pieces are.
      const probe = this.#headerTail.length > 0 ? Buffer.concat([this.#headerTail, piece]) : piece;
      const found = probe.indexOf(this.#lf ? '\n\n' : '\r\n\r\n');
      const room = HEADER_CAP - this.#headerBytes;
      if (room > 0) this.#header.push(piece.subarray(0, room));
      const endAt = found === -1 ? -1 : this.#headerBytes - this.#headerTail.length + found;
      this.#headerBytes += piece.length;
      this.#headerTail = Buffer.from(probe.subarray(Math.max(0, probe.length - 3)));
      if (endAt !== -1 || this.#headerBytes >= HEADER_CAP) {
        const joined = Buffer.concat(this.#header);
        this.#header = [endAt === -1 ? joined : joined.subarray(0, endAt)];
        this.#finishHeader();
      }
    }
    this.push(piece);
  }

  #finishHeader(): void {
    this.#headerDone = true;
    const text = Buffer.concat(this.#header).subarray(0, HEADER_CAP).toString('latin1');
    this.#header = [];
    this.messageId = parseMessageId(text);
  }
}

export interface LocalFormResult {
  readonly data: Buffer;
  readonly messageId: string | undefined;
  readonly endsWithNewline: boolean;
}

/**
 * The same conversion as {@link LocalForm} for a message already in memory (the fast path for
 * small messages: no stream machinery per message). A unit test checks both agree.
 */
export function toLocalForm(input: Buffer, options: LocalFormOptions = {}): LocalFormResult {
  const lf = options.lf ?? true;
  let data = lf ? crlfToLf(input) : input;
  if (options.mboxQuote) {
    const pieces: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      let i = pos;
      while (i < data.length && data[i] === GT) i++;
      if (i + FROM.length <= data.length && data.subarray(i, i + FROM.length).equals(FROM))
        pieces.push(QUOTE);
      const nl = data.indexOf(LF, pos);
      const end = nl === -1 ? data.length : nl + 1;
      pieces.push(data.subarray(pos, end));
      pos = end;
    }
    data = Buffer.concat(pieces);
  }
  const headerEnd = data.indexOf(lf ? '\n\n' : '\r\n\r\n');
  const header = data
    .subarray(0, Math.min(headerEnd === -1 ? data.length : headerEnd, HEADER_CAP))
    .toString('latin1');
  return {
    data,
    messageId: parseMessageId(header),
    endsWithNewline: data.length > 0 && data[data.length - 1] === LF,
  };
}
