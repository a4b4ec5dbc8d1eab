// Maildir file names (https://cr.yp.to/proto/maildir.html, Dovecot's maildir-filename.c):
// `<unique>[,S=<size>][,W=<vsize>][:2,<flags>]`. The part before `:` is the base name, which stays
// the same when a client renames the file to change its flags or moves it from new/ to cur/.

/** The separator between the base name and the `2,FLAGS` info (Dovecot's default `:`). */
export const INFO_SEPARATOR = ':';

/** The base name of a Maildir file: everything before the info separator. */
export function baseName(fileName: string): string {
  const at = fileName.indexOf(INFO_SEPARATOR);
  return at === -1 ? fileName : fileName.slice(0, at);
}

/** True for names a Maildir reader must skip: dot files, and names our state file cannot hold. */
export function isIgnoredName(fileName: string): boolean {
  return fileName.length === 0 || fileName.startsWith('.') || /[\x00-\x1f\x7f/]/.test(fileName);
}

/** Dovecot's `,S=` (physical size) and `,W=` (size with CRLF line endings) fields of a base name. */
export function sizeFields(base: string): { fileSize?: number; crlfSize?: number } {
  const out: { fileSize?: number; crlfSize?: number } = {};
  const parts = base.split(',');
  for (let i = 1; i < parts.length; i++) {
    const match = /^([SW])=(\d{1,15})$/.exec(parts[i] ?? '');
    if (!match) continue;
    const value = Number(match[2]);
    if (match[1] === 'S') out.fileSize = value;
    else out.crlfSize = value;
  }
  return out;
}

/** Delivery time encoded at the start of a Maildir name: seconds and, if `.M<usec>` follows, µs. */
export function nameTime(base: string): { seconds: number; micros: number } | undefined {
  const match = /^(\d{1,12})(?:\.M(\d{1,6}))?/.exec(base);
  if (!match) return undefined;
  return { seconds: Number(match[1]), micros: match[2] === undefined ? 0 : Number(match[2]) };
}

/**
 * Orders files first seen together: by delivery time (seconds, then microseconds, as Dovecot's
 * `maildir_filename_sort_cmp` does), then by name. Names without a leading timestamp use the
 * file's modification time in seconds.
 */
export function compareDelivery(
  a: { base: string; mtimeMs: number },
  b: { base: string; mtimeMs: number },
): number {
  const ta = nameTime(a.base) ?? { seconds: Math.floor(a.mtimeMs / 1000), micros: 0 };
  const tb = nameTime(b.base) ?? { seconds: Math.floor(b.mtimeMs / 1000), micros: 0 };
  if (ta.seconds !== tb.seconds) return ta.seconds - tb.seconds;
  if (ta.micros !== tb.micros) return ta.micros - tb.micros;
  return a.base < b.base ? -1 : a.base > b.base ? 1 : 0;
}

export { maildirHost, uniqueName } from '../internal/maildir-name.ts';
