// What a cron job sees when the TLS set-up is wrong (issue 12): `popgate fetch` as a real child
// process against a real Dovecot. A certificate that does not verify, a CA file that is not a
// certificate, and the wrong TLS mode for the port are configuration faults: exit 78 (retrying
// cannot help) and a message that says what to change. Only a cut handshake stays 75.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDevCa } from '../../dev/certs.ts';
import { sharedDovecot } from '../helpers/dovecot.ts';
import { prepare, runToEnd } from '../helpers/fetch-crash.ts';
import { requirePeer } from '../helpers/peers.ts';

const USER = 'tls-faults@example.test';
const dovecot = sharedDovecot({ users: [USER] });

/** The fetch command line of `prepare`, with `--ca` and `--port` replaced and `--tls` set. */
function withArgs(args: string[], changes: { ca?: string | null; port?: number; tls?: string }): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--json') continue;
    if (arg === '--ca' && changes.ca !== undefined) {
      i++;
      if (changes.ca !== null) out.push('--ca', changes.ca);
      continue;
    }
    if (arg === '--port' && changes.port !== undefined) {
      out.push('--port', String(changes.port));
      i++;
      continue;
    }
    out.push(arg);
  }
  if (changes.tls) out.push('--tls', changes.tls);
  return out;
}

test('an untrusted server certificate exits 78 and says to set ca', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const e = await prepare(t, d, USER, d.popsPort);
  const other = await createDevCa(e.dir);
  for (const ca of [null, other.caCertPath]) {
    const run = await runToEnd({ ...e, args: withArgs(e.args, { ca }) });
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /certificate is not trusted: for a private CA, set ca/);
    assert.match(run.stderr, /ERR_POP3_TLS_UNTRUSTED/);
  }
});

test('a CA file that holds no certificate is named, with what is wrong, and exits 78', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const e = await prepare(t, d, USER, d.popsPort);
  const notPem = join(e.dir, 'not-a-ca.pem');
  await writeFile(notPem, 'this is not a certificate\n');
  const run = await runToEnd({ ...e, args: withArgs(e.args, { ca: notPem }) });
  assert.equal(run.code, 78, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(
      `the CA file ${notPem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not usable: it holds no PEM certificate`,
    ),
  );
  const key = join(e.dir, 'key-not-ca.pem');
  await writeFile(key, '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n');
  const keyRun = await runToEnd({ ...e, args: withArgs(e.args, { ca: key }) });
  assert.equal(keyRun.code, 78, keyRun.stderr);
  assert.match(keyRun.stderr, /block 1 is a private key; a CA file holds only certificates/);
});

test('--tls starttls against an implicit-TLS port fails fast with "use --tls implicit" (exit 78)', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const e = await prepare(t, d, USER, d.popsPort);
  const run = await runToEnd({ ...e, args: withArgs(e.args, { tls: 'starttls' }) });
  assert.equal(run.code, 78, run.stderr);
  assert.match(run.stderr, /speaks TLS from the first byte; use --tls implicit/);
  assert.match(run.stderr, /ERR_POP3_WRONG_TLS_MODE/);
});

test('--tls implicit against a plain POP3 port says "use --tls starttls" (exit 78)', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const e = await prepare(t, d, USER, d.popPort);
  const run = await runToEnd({ ...e, args: withArgs(e.args, { tls: 'implicit' }) });
  assert.equal(run.code, 78, run.stderr);
  assert.match(run.stderr, /does not speak TLS from the first byte .*use --tls starttls/);
});
