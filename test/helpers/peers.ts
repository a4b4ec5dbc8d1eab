// Real peers (Dovecot, curl, mutt, chromium, ...) are installed by scripts/install-peers.sh.
// On a user's machine a missing peer skips its tests with a loud reason; under CI=true it fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { TestContext } from 'node:test';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

const PEER_BINARIES: Record<string, string[]> = {
  dovecot: ['/usr/sbin/dovecot'],
  curl: ['/usr/bin/curl'],
  mutt: ['/usr/bin/mutt'],
  fetchmail: ['/usr/bin/fetchmail'],
  getmail: ['/usr/bin/getmail'],
  chromium: ['/usr/bin/chromium'],
  tmux: ['/usr/bin/tmux'],
  python3: ['/usr/bin/python3'],
  openssl: ['/usr/bin/openssl'],
  postgres: ['/usr/lib/postgresql/15/bin/postgres'],
};

/** Path of the peer's binary, or undefined when it is not installed. */
export function peerPath(name: keyof typeof PEER_BINARIES | string): string | undefined {
  const candidates = PEER_BINARIES[name] ?? [];
  for (const candidate of candidates) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('which', [name], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns the peer's path, or skips the test loudly when it is absent. Under CI the absence is
 * a failure: CI must install every peer (see scripts/install-peers.sh).
 */
export function requirePeer(t: TestContext, name: string): string | undefined {
  const path = peerPath(name);
  if (path) return path;
  missing(t, `PEER MISSING: ${name} is not installed (run scripts/install-peers.sh as root)`);
  return undefined;
}

/**
 * An IP address of this machine that is not loopback (for tests that need a connection whose
 * peer is not loopback: connect to it and the server sees it as the peer), or a loud skip (a
 * failure under CI) when the machine has none. Prefers IPv4; skips link-local addresses.
 */
export function requireNonLoopbackAddress(t: TestContext): string | undefined {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const usable = all.filter(
    (a) => !a.internal && !a.address.startsWith('fe80:') && !a.address.startsWith('169.254.'),
  );
  const address = (usable.find((a) => a.family === 'IPv4') ?? usable[0])?.address;
  if (address !== undefined) return address;
  missing(t, 'NO NETWORK: this machine has no address besides loopback (give it one, e.g. a veth pair)');
  return undefined;
}

/** The one rule for a missing peer: a loud skip, or a failure under CI. */
function missing(t: TestContext, reason: string): void {
  if (inCI) throw new Error(`${reason}; CI must provide it`);
  console.error(`\n*** SKIPPED: ${reason} ***\n`);
  t.skip(reason);
}
