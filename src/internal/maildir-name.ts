/**
 * The one generator of new Maildir file names, for the fetcher's Maildir sink and the server's
 * Maildir store, so both write names Dovecot, mutt and every Maildir reader accept
 * (https://cr.yp.to/proto/maildir.html, Dovecot's maildir-filename.c):
 * `<sec>.M<usec>P<pid>Q<n>R<random hex>.<host>`. Unique across processes (pid), within one (a
 * counter) and across pid reuse (fresh random bits). {@link parseOwnName} reads pid and host back
 * so the fetcher can remove `tmp/` leftovers of popgate processes that died.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * The host part of a Maildir name. The spec asks `/` to become `\057` and `:` to become `\072`
 * (the info separator); `,` (which starts Dovecot's `,S=` fields), `\` (so escapes stay
 * unambiguous) and white space are escaped the same way. A real host name has none of the extra
 * characters, so for it this is exactly the spec's rule.
 */
export function maildirHost(name = hostname()): string {
  const escaped = name.replace(/[/:,\\\s]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return escaped.length > 0 ? escaped : 'localhost';
}

let counter = 0;

/** A unique base name for a new delivery (see the header). */
export function uniqueName(now = Date.now()): string {
  counter = (counter + 1) % 1_000_000_000;
  const seconds = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000 + Math.floor((performance.now() % 1) * 1000);
  return `${seconds}.M${micros}P${process.pid}Q${counter}R${randomBytes(4).toString('hex')}.${maildirHost()}`;
}

// `Rpg` is how fetch sinks before the shared generator spelled the random part.
const OWN_NAME = /^\d+\.M\d+P(\d+)Q\d+R(?:pg)?[0-9a-f]+\.([^,:]+)/;

/** The pid and host part of a name {@link uniqueName} made, or undefined for any other name. */
export function parseOwnName(name: string): { pid: number; host: string } | undefined {
  const match = OWN_NAME.exec(name);
  return match ? { pid: Number(match[1]), host: match[2]! } : undefined;
}
