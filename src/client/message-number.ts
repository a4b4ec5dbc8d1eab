/**
 * The check of a message number the caller passes (RFC 1939 §5: numbers start at 1), shared by
 * Pop3Client's commands and retrieveMany: a bad one is a typed ERR_POP3_INVALID_ARGUMENT before
 * anything is queued, never a malformed command line.
 */
import { Pop3Error } from '../errors.ts';

export function checkNumber(n: number, what = 'message number'): string {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Pop3Error('ERR_POP3_INVALID_ARGUMENT', `${what} must be a positive integer`);
  }
  return String(n);
}
