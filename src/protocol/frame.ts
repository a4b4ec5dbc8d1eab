/**
 * A whole message answer framed in one go (RFC 1939 §3): the status line, the message
 * dot-stuffed, the terminating `.CRLF`. The stuffing is the streaming {@link DotEncoder}'s (one
 * set of rules for both paths: bare LF becomes CRLF, a missing final line end is added); this
 * file only measures the result and copies it into a caller's buffer, so the server writes a
 * small RETR straight into its output batch with no stream and no async iterator.
 */
import { DotEncoder } from './dot-stuffing.ts';

/** A framed answer ready to copy, from {@link planFrame}. */
export interface Frame {
  /** The status line (ASCII, ending in CRLF). */
  readonly statusLine: string;
  /** The stuffed body and its end (a line end if missing, `.CRLF`): slices of the message. */
  readonly parts: readonly Buffer[];
  /** Octets of the whole answer: status line, stuffed body, line end if missing, `.CRLF`. */
  readonly length: number;
  /** Octets of stuffed body (status line, added line end and terminator excluded). */
  readonly bodyBytes: number;
}

/** Frames `body` after `statusLine` without copying it (the parts are slices of `body`). */
export function planFrame(statusLine: string, body: Buffer): Frame {
  const encoder = new DotEncoder();
  const parts = encoder.push(body);
  let bodyBytes = 0;
  for (const part of parts) bodyBytes += part.length;
  let length = statusLine.length + bodyBytes;
  for (const part of encoder.end()) {
    parts.push(part);
    length += part.length;
  }
  return { statusLine, parts, length, bodyBytes };
}

/**
 * Copies the framed answer into `out` at `offset` (which must have `frame.length` octets free)
 * and returns the offset after it.
 */
export function writeFrame(out: Buffer, offset: number, frame: Frame): number {
  let at = offset + out.write(frame.statusLine, offset, 'latin1');
  for (const part of frame.parts) at += part.copy(out, at);
  return at;
}

/**
 * The framed answer in a Buffer of its own.
 *
 * @example
 * frameMessage('+OK 8 octets\r\n', Buffer.from('.a\r\nb\r\n')).frame.toString()
 * // '+OK 8 octets\r\n..a\r\nb\r\n.\r\n'
 */
export function frameMessage(statusLine: string, body: Buffer): { frame: Buffer; bodyBytes: number } {
  const plan = planFrame(statusLine, body);
  const frame = Buffer.allocUnsafe(plan.length);
  writeFrame(frame, 0, plan);
  return { frame, bodyBytes: plan.bodyBytes };
}
