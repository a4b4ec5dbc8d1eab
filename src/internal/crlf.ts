/**
 * The one CRLF <-> LF conversion, shared by the Maildir store (LF on disk, CRLF on the POP3 wire)
 * and the fetcher's local-form transform (CRLF from the wire, LF on disk). The rules are
 * Dovecot's, so sizes agree with it for the same file: towards CRLF every LF not preceded by CR
 * gains one and a lone CR passes through; towards LF every CRLF becomes LF and a lone CR stays.
 * State across chunk boundaries is one octet (`prev`) one way and one held-back CR the other.
 */
const CR = 0x0d;
const LF = 0x0a;

/** Number of LF octets in `chunk` not preceded by CR; `prev` is the octet before the chunk (or -1). */
export function countBareLf(chunk: Uint8Array, prev = -1): number {
  let count = 0;
  let at = chunk.indexOf(LF);
  while (at !== -1) {
    const before = at === 0 ? prev : chunk[at - 1];
    if (before !== CR) count += 1;
    at = chunk.indexOf(LF, at + 1);
  }
  return count;
}

/** Copies `input` into `out` (sized for the result) with a CR before every bare LF. */
export function copyAsCrlf(input: Uint8Array, out: Buffer, prev = -1): Buffer {
  const source = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let written = 0;
  let start = 0;
  let at = source.indexOf(LF);
  while (at !== -1) {
    const before = at === 0 ? prev : source[at - 1];
    if (before !== CR) {
      written += source.copy(out, written, start, at);
      out[written++] = CR;
      start = at;
    }
    at = source.indexOf(LF, at + 1);
  }
  source.copy(out, written, start);
  return out;
}

/** Converts a chunk to CRLF; `prev` is the octet before it (-1 at the start). May return a view of it. */
export function lfToCrlf(chunk: Uint8Array, prev = -1): Buffer {
  const extra = countBareLf(chunk, prev);
  const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (extra === 0) return input;
  return copyAsCrlf(input, Buffer.allocUnsafe(chunk.length + extra), prev);
}

/** Converts a whole buffer from CRLF to LF (a lone CR stays). May return its input. */
export function crlfToLf(chunk: Uint8Array): Buffer {
  const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let at = buf.indexOf('\r\n');
  if (at === -1) return buf;
  const out = Buffer.allocUnsafe(buf.length);
  let w = 0;
  let r = 0;
  while (at !== -1) {
    w += buf.copy(out, w, r, at);
    out[w++] = LF;
    r = at + 2;
    at = buf.indexOf('\r\n', r);
  }
  w += buf.copy(out, w, r);
  return out.subarray(0, w);
}

/**
 * Streaming CRLF-to-LF: a CR at the end of a chunk is held back until the next chunk says whether
 * LF follows, so any split of the input gives the same output.
 */
export class CrlfToLf {
  #pendingCr = false;

  feed(chunk: Uint8Array): Buffer {
    let input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#pendingCr) {
      input = Buffer.concat([Buffer.of(CR), input]);
      this.#pendingCr = false;
    }
    if (input.length > 0 && input[input.length - 1] === CR) {
      this.#pendingCr = true;
      input = input.subarray(0, input.length - 1);
    }
    return crlfToLf(input);
  }

  /** What is still held back (a final lone CR), once the input has ended. */
  end(): Buffer {
    if (!this.#pendingCr) return Buffer.alloc(0);
    this.#pendingCr = false;
    return Buffer.of(CR);
  }
}
