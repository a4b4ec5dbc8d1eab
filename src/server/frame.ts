/**
 * A whole multi-line answer written in one go (RFC 1939 §3): the status line, the message
 * dot-stuffed, the terminating `.CRLF`. The bytes are exactly what {@link DotEncoder} produces
 * for the same message (bare LF becomes CRLF, a missing final line end is added), found with
 * `indexOf` over line ends and written straight into the session's output batch, so a small
 * RETR costs no stream, no async iterator, no per-slice write and no allocation of its own.
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/** The size of a framed answer, from {@link measureFrame}. */
export interface FrameSize {
  /** Octets of the whole answer: status line, stuffed body, line end if missing, `.CRLF`. */
  readonly length: number;
  /** Octets of stuffed body (status line and terminator excluded), for byte counters. */
  readonly bodyBytes: number;
  /** Stuffed dots and CRs inserted before bare LFs. */
  readonly inserted: number;
  /** 0: the body ends with LF; 1: with CR (an LF follows); 2: otherwise (CRLF follows). */
  readonly tail: 0 | 1 | 2;
}

/** Measures the framing of `body` after `statusLine` (ASCII, ending in CRLF). */
export function measureFrame(statusLine: string, body: Buffer): FrameSize {
  const len = body.length;
  let inserted = len > 0 && body[0] === DOT ? 1 : 0;
  let lf = body.indexOf(LF);
  while (lf !== -1) {
    if (lf === 0 || body[lf - 1] !== CR) inserted += 1;
    if (lf + 1 < len && body[lf + 1] === DOT) inserted += 1;
    lf = body.indexOf(LF, lf + 1);
  }
  const last = len > 0 ? body[len - 1] : LF;
  const tail = last === LF ? 0 : last === CR ? 1 : 2;
  return { length: statusLine.length + len + inserted + tail + 3, bodyBytes: len + inserted, inserted, tail };
}

/**
 * Writes the framed answer into `out` at `offset` (which must have `size.length` octets free)
 * and returns the offset after it.
 */
export function writeFrame(
  out: Buffer,
  offset: number,
  statusLine: string,
  body: Buffer,
  size: FrameSize,
): number {
  const len = body.length;
  let w = offset + out.write(statusLine, offset, 'latin1');
  if (size.inserted === 0) {
    w += body.copy(out, w);
  } else {
    let start = 0;
    if (len > 0 && body[0] === DOT) out[w++] = DOT;
    let lf = body.indexOf(LF);
    while (lf !== -1) {
      const bare = lf === 0 || body[lf - 1] !== CR;
      const dot = lf + 1 < len && body[lf + 1] === DOT;
      if (bare || dot) {
        w += body.copy(out, w, start, lf);
        if (bare) out[w++] = CR;
        out[w++] = LF;
        if (dot) out[w++] = DOT;
        start = lf + 1;
      }
      lf = body.indexOf(LF, lf + 1);
    }
    w += body.copy(out, w, start);
  }
  if (size.tail === 2) out[w++] = CR;
  if (size.tail !== 0) out[w++] = LF;
  out[w++] = DOT;
  out[w++] = CR;
  out[w++] = LF;
  return w;
}

/**
 * The framed answer in a Buffer of its own.
 *
 * @example
 * frameMessage('+OK 8 octets\r\n', Buffer.from('.a\r\nb\r\n')).frame.toString()
 * // '+OK 8 octets\r\n..a\r\nb\r\n.\r\n'
 */
export function frameMessage(statusLine: string, body: Buffer): { frame: Buffer; bodyBytes: number } {
  const size = measureFrame(statusLine, body);
  const frame = Buffer.allocUnsafe(size.length);
  writeFrame(frame, 0, statusLine, body, size);
  return { frame, bodyBytes: size.bodyBytes };
}
