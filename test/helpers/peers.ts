// Real peers (Dovecot, curl, mutt, chromium, ...) are installed by scripts/install-peers.sh.
// On a user's machine a missing peer skips its tests with a loud reason; under CI=true it fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  const reason = `PEER MISSING: ${name} is not installed (run scripts/install-peers.sh as root)`;
  if (inCI) throw new Error(`${reason}; CI must provide it`);
  console.error(`\n*** SKIPPED: ${reason} ***\n`);
  t.skip(reason);
  return undefined;
}
