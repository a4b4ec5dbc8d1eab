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
  #lineCarry: Buffer | undefined;
  #atLineStart = true;
  #header: Buffer[] = [];
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

  #emitQuoted(input: Buffer, final: boolean): void {
    if (!this.#quote) {
      if (input.length > 0) this.#out(input);
      return;
    }
    const buf = this.#lineCarry ? Buffer.concat([this.#lineCarry, input]) : input;
    this.#lineCarry = undefined;
    const pieces: Buffer[] = [];
    let pos = 0;
    while (pos < buf.length) {
      if (this.#atLineStart) {
        let i = pos;
        while (i < buf.length && buf[i] === GT) i++;
        if (i + FROM.length > buf.length && !final) {
          // Cannot decide yet whether this line needs quoting: wait for more bytes.
          this.#lineCarry = buf.subarray(pos);
          break;
        }
        if (i + FROM.length <= buf.length && buf.subarray(i, i + FROM.length).equals(FROM))
          pieces.push(QUOTE);
        this.#atLineStart = false;
      }
      const nl = buf.indexOf(LF, pos);
      const end = nl === -1 ? buf.length : nl + 1;
      pieces.push(buf.subarray(pos, end));
      pos = end;
      if (nl !== -1) this.#atLineStart = true;
    }
    if (pieces.length > 0) this.#out(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
  }

  #out(piece: Buffer): void {
    if (piece.length === 0) return;
    this.bytes += piece.length;
    this.#lastByte = piece[piece.length - 1] ?? this.#lastByte;
    if (!this.#headerDone) {
      const from = Math.max(0, this.#headerBytes - 3);
      this.#header.push(piece);
      this.#headerBytes += piece.length;
      const joined = this.#header.length === 1 ? piece : Buffer.concat(this.#header);
      const end = joined.indexOf(this.#lf ? '\n\n' : '\r\n\r\n', from);
      if (end !== -1 || this.#headerBytes >= HEADER_CAP) {
        this.#header = [end === -1 ? joined : joined.subarray(0, end)];
        this.#finishHeader();
      } else {
        this.#header = [joined];
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
