// Maildrop user names become directory names (`<root>/<user>/`), so they are validated once, at
// the door, and normalised to Unicode NFC. Case is kept: whoever names the user decides it (the
// token validator lower-cases `email`, `preferred_username`, `upn` and `username` logins and keeps
// `sub` exact, since OIDC Core §2 subjects are case-sensitive; `popgate deliver` lower-cases
// unless `--keep-case`). A store that folded case as well would merge two subjects. Allowed:
// letters and digits of any script, and `. _ - + = @ % ! # $ & ' * ^ ~ { } |` (the characters of
// an e-mail address's local part and domain), at most 254 octets, at most one `@`. Refused: `/`,
// `\`, `..`, control characters, white space, and a leading `.` or `-` (hidden files, option-like
// names).
import { StoreError } from '../errors.ts';

const ALLOWED = /^[\p{L}\p{N}._\-+=@%!#$&'*^~{}|]+$/u;

function invalid(why: string): StoreError {
  return new StoreError('ERR_STORE_INVALID_USER', `invalid maildrop user name: ${why}`);
}

/**
 * Validates a maildrop user name and returns its normal form (NFC, case kept). Throws
 * StoreError ERR_STORE_INVALID_USER. The name itself is never echoed (it may be attacker text).
 */
export function normalizeUser(user: unknown): string {
  if (typeof user !== 'string' || user.length === 0) throw invalid('it is empty');
  const name = user.normalize('NFC');
  if (Buffer.byteLength(name, 'utf8') > 254) throw invalid('it is longer than 254 octets');
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) throw invalid('it contains a control character');
  if (name.includes('/') || name.includes('\\')) throw invalid('it contains a path separator');
  if (name.includes('..')) throw invalid('it contains ".."');
  if (name.startsWith('.') || name.startsWith('-')) throw invalid('it starts with "." or "-"');
  if (!ALLOWED.test(name)) throw invalid('it contains white space or a character not allowed in an address');
  if (name.indexOf('@') !== name.lastIndexOf('@')) throw invalid('it contains more than one "@"');
  return name;
}
