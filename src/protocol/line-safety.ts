/**
 * The one check that keeps a text from becoming two lines on the wire (architecture.md R8): CR, LF and
 * NUL are refused wherever text goes into a line, in commands the client writes and in answers
 * the server writes, so no argument, status text or listing line can inject a second line.
 */
import { Pop3Error } from '../errors.ts';

const LINE_BREAK_OR_NUL = /[\r\n\0]/;

/** True when `text` holds CR, LF or NUL and must not be written as (part of) one line. */
export function hasLineBreakOrNul(text: string): boolean {
  return LINE_BREAK_OR_NUL.test(text);
}

/**
 * Throws ERR_POP3_INVALID_ARGUMENT when `text` holds CR, LF or NUL. `what` names the text in the
 * message; the text itself is never repeated (it may be a secret).
 */
export function refuseLineBreak(text: string, what: string): void {
  if (LINE_BREAK_OR_NUL.test(text)) {
    throw new Pop3Error('ERR_POP3_INVALID_ARGUMENT', `${what} contains CR, LF or NUL; refused`);
  }
}
