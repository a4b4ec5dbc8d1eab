// Line-ending conversion between the Maildir on disk (LF, as Postfix, procmail and Dovecot write
// it) and POP3 on the wire (CRLF, RFC 1939 section 3). The rules are Dovecot's, so sizes and bytes
// agree with it for the same file: on read every LF not preceded by CR becomes CRLF and a lone CR
// passes through; on delivery every CRLF becomes LF (Dovecot's `mail_save_crlf = no`). The
// conversion itself is src/internal/crlf.ts; this file adds the store's size checks and counts.
import { Transform, type TransformCallback } from 'node:stream';
import { StoreError } from '../errors.ts';
import { CrlfToLf, copyAsCrlf, countBareLf, crlfToLf, lfToCrlf } from '../internal/crlf.ts';

export { countBareLf };

/** Size in octets of `data` once converted to CRLF line endings (what LIST reports). */
export function crlfLength(data: Uint8Array): number {
  return data.length + countBareLf(data);
}

/** Converts a chunk to CRLF; `prev` is the octet before it (-1 at the start). */
export const toCrlf = lfToCrlf;

/**
 * Converts `chunk` (a whole message) to CRLF in a new Buffer when the result is exactly
 * `expectedSize` octets, else returns undefined (the file is not the one that was counted).
 * Unlike {@link toCrlf} it never returns a view of its input, which may be a reused buffer.
 */
export function crlfCopy(chunk: Uint8Array, expectedSize: number): Buffer | undefined {
  const extra = countBareLf(chunk);
  if (chunk.length + extra !== expectedSize) return undefined;
  const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const out = Buffer.allocUnsafe(expectedSize);
  if (extra === 0) {
    input.copy(out);
    return out;
  }
  return copyAsCrlf(input, out, -1);
}

/** Converts a whole buffer from CRLF to LF (CRLF becomes LF; a lone CR stays). */
export function toLf(data: Uint8Array): Buffer {
  return crlfToLf(data);
}

/**
 * Streaming CRLF encoder for RETR and TOP: LF becomes CRLF across chunk boundaries. When
 * `expectedSize` is given, the stream fails with StoreError ERR_STORE_IO if the output length
 * differs, so a file rewritten under us can never be served with a size LIST did not announce.
 */
export class CrlfEncoder extends Transform {
  #prev = -1;
  #emitted = 0;
  readonly #expected: number | undefined;

  constructor(expectedSize?: number) {
    super({ highWaterMark: 64 * 1024 });
    this.#expected = expectedSize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    const out = toCrlf(chunk, this.#prev);
    this.#prev = chunk[chunk.length - 1] ?? this.#prev;
    this.#emitted += out.length;
    if (this.#expected !== undefined && this.#emitted > this.#expected) {
      callback(sizeChanged(this.#expected));
      return;
    }
    callback(null, out);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#expected !== undefined && this.#emitted !== this.#expected) {
      callback(sizeChanged(this.#expected));
      return;
    }
    callback();
  }
}

function sizeChanged(expected: number): StoreError {
  return new StoreError(
    'ERR_STORE_IO',
    `message file changed on disk while it was read (expected ${expected} octets); the session must end`,
  );
}

/**
 * Incremental CRLF-to-LF conversion for delivery, counting what it produces: `fileSize` (octets
 * written to disk) and `crlfSize` (octets a POP3 session will serve, Dovecot's `W=`).
 */
export class LfNormalizer {
  readonly #convert = new CrlfToLf();
  #lastOut = -1;
  fileSize = 0;
  crlfSize = 0;

  feed(chunk: Uint8Array): Buffer {
    const out = this.#convert.feed(chunk);
    this.#count(out);
    return out;
  }

  end(): Buffer {
    const out = this.#convert.end();
    this.#count(out);
    return out;
  }

  #count(out: Buffer): void {
    if (out.length === 0) return;
    this.fileSize += out.length;
    this.crlfSize += out.length + countBareLf(out, this.#lastOut);
    this.#lastOut = out[out.length - 1] ?? this.#lastOut;
  }
}
