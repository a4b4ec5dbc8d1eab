// The guarantee under network and disk faults, with the real CLI as a child process against a
// real Dovecot: a TLS-terminating proxy cutting the connection at random plaintext offsets in
// either direction and around QUIT (each cut checked to have happened in its run), and a full
// disk (tmpfs).
// After the reruns every message is in the Maildir exactly once and none is left on the server.
// (SIGKILL at random moments: fetch-crash-kill.test.ts.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import tls from 'node:tls';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import {
  assertExactlyOnce,
  onServer,
  prepare,
  prng,
  runToEnd,
  sourceContents,
} from '../helpers/fetch-crash.ts';
import { writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { inCI, requirePeer } from '../helpers/peers.ts';

let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: ['cut@example.test', 'full@example.test'] });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

/**
 * Where the next connection is cut: after `after` plaintext bytes in one direction, or around QUIT
 * (`quit-before-ok`: QUIT reaches the server, which commits its deletions, but nothing after it
 * reaches the client; `quit-dropped`: the commands before QUIT go on, QUIT itself never arrives).
 */
type CutPlan =
  | { readonly dir: 's2c' | 'c2s'; readonly after: number }
  | { readonly at: 'quit-before-ok' | 'quit-dropped' }
  | undefined;

/**
 * A TLS-terminating proxy (its own certificate, which the client trusts; verified TLS to Dovecot
 * behind it), so cuts are placed in the plaintext POP3 stream, both ways, and QUIT can be seen.
 * Only the first connection after `plan()` is cut; `fired()` says whether that cut happened.
 */
async function cuttingProxy(
  d: DovecotInstance,
  certs: TestCerts,
): Promise<{ port: number; plan: (p: CutPlan) => void; fired: () => string | undefined; server: Server }> {
  let pending: CutPlan;
  let fired: string | undefined;
  const server = tls.createServer({ key: certs.server.keyPem, cert: certs.server.certPem }, (client) => {
    const cut = pending;
    pending = undefined;
    const upstream = tls.connect({
      host: '127.0.0.1',
      port: d.popsPort,
      ca: d.caCertPem,
      checkServerIdentity: () => undefined,
    });
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    const describe = (what: string) => {
      fired = what;
    };
    let s2c = 0;
    let c2s = 0;
    let quitSent = false;
    let commands = '';
    upstream.on('data', (chunk: Buffer) => {
      if (quitSent) return; // quit-before-ok: the answer to QUIT (and anything after) is lost
      if (cut && 'dir' in cut && cut.dir === 's2c' && s2c + chunk.length >= cut.after) {
        describe(`server->client after ${cut.after} bytes`);
        client.write(chunk.subarray(0, Math.max(0, cut.after - s2c)), kill);
        s2c = cut.after;
        return;
      }
      s2c += chunk.length;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      if (cut && 'dir' in cut && cut.dir === 'c2s' && c2s + chunk.length >= cut.after) {
        describe(`client->server after ${cut.after} bytes`);
        upstream.write(chunk.subarray(0, Math.max(0, cut.after - c2s)), kill);
        c2s = cut.after;
        return;
      }
      c2s += chunk.length;
      if (cut && 'at' in cut) {
        commands = (commands + chunk.toString('latin1')).slice(-4096);
        const quit = commands.search(/(^|\r\n)QUIT\r\n/i);
        if (quit !== -1) {
          const text = chunk.toString('latin1');
          const inChunk = text.search(/(^|\r\n)QUIT\r\n/i);
          const before = inChunk === -1 ? 0 : inChunk + (text[inChunk] === '\r' ? 2 : 0);
          if (cut.at === 'quit-dropped') {
            describe('QUIT dropped before the server');
            upstream.write(chunk.subarray(0, before), kill);
          } else {
            describe('between QUIT and its +OK');
            quitSent = true;
            upstream.write(chunk);
            // The server commits its deletions and closes; the client never hears back.
            upstream.once('close', () => client.destroy());
          }
          return;
        }
      }
      upstream.write(chunk);
    });
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', () => (quitSent ? undefined : kill()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    plan: (p) => {
      pending = p;
      fired = undefined;
    },
    fired: () => fired,
    server,
  };
}

test('the connection cut both ways at random offsets and around QUIT: every message exactly once, none left', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const user = 'cut@example.test';
  const source = await d.maildirOf(user);
  const fixtures = await writeUniformMessages(source, 500, 4000, {
    seed: 5,
    owner: { uid: d.mailUid, gid: d.mailGid },
  });
  const contents = await sourceContents(fixtures);
  const certs = await createTestCerts(t);
  const proxy = await cuttingProxy(d, certs);
  t.after(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));
  const e = await prepare(t, d, user, proxy.port);
  await writeFile(join(e.dir, 'ca.pem'), certs.caCertPem);
  const seed = Number(process.env.POPGATE_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed}`);
  const random = prng(seed);
  // Cuts until 15 have happened each way at random plaintext offsets (500 messages are about
  // 2.1 MB from the server; the commands of a run a few KB, the AUTH line alone about 1 KB), 4
  // between QUIT and its +OK and 2 with QUIT lost. An offset past the end of a run's traffic cuts
  // nothing: that run does not count, and another offset is drawn.
  const wanted = { 'server->client': 15, 'client->server': 15, 'between QUIT': 4, 'QUIT dropped': 2 };
  type Kind = keyof typeof wanted;
  const done: Record<Kind, number> = {
    'server->client': 0,
    'client->server': 0,
    'between QUIT': 0,
    'QUIT dropped': 0,
  };
  const planFor = (kind: Kind): CutPlan =>
    kind === 'server->client'
      ? { dir: 's2c', after: Math.floor(random() * 2_200_000) }
      : kind === 'client->server'
        ? { dir: 'c2s', after: Math.floor(random() * 3_000) }
        : { at: kind === 'between QUIT' ? 'quit-before-ok' : 'quit-dropped' };
  let next = 100_000;
  for (let attempt = 0; attempt < 120; attempt++) {
    const kind = (Object.keys(wanted) as Kind[]).find((k) => done[k] < wanted[k]);
    if (kind === undefined) break;
    if ((await onServer(source)) === 0) {
      const more = await writeUniformMessages(source, 500, 4000, {
        firstIndex: next,
        seed: 5,
        owner: { uid: d.mailUid, gid: d.mailGid },
      });
      next += 500;
      fixtures.push(...more);
      for (const [id, bytes] of await sourceContents(more)) contents.set(id, bytes);
    }
    proxy.plan(planFor(kind));
    const run = await runToEnd(e);
    const fired = proxy.fired();
    assert.ok(run.code === 0 || run.code === 75, `exit ${run.code}: ${run.stderr}`);
    // A temporary failure must be this run's cut, not something else going wrong.
    if (run.code === 75) assert.ok(fired, `exit 75 without a cut in this run: ${run.stderr}`);
    if (fired?.startsWith(kind)) done[kind]++;
  }
  t.diagnostic(`cuts that happened: ${JSON.stringify(done)}`);
  assert.deepEqual(done, wanted);
  proxy.plan(undefined);
  const final = await runToEnd(e);
  assert.equal(final.code, 0, final.stderr);
  await assertExactlyOnce(e.maildir, fixtures, contents);
  assert.equal(await onServer(source), 0);
});

test('a full disk stops with a clear error, deletes nothing on the server, and resumes cleanly', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const user = 'full@example.test';
  const source = await d.maildirOf(user);
  const fixtures = await writeUniformMessages(source, 100, 40_000, {
    seed: 9,
    owner: { uid: d.mailUid, gid: d.mailGid },
  });
  const contents = await sourceContents(fixtures);
  const mountPoint = await mkdtemp(join(tmpdir(), 'popgate-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint], { stdio: 'ignore' });
  } catch {
    await rm(mountPoint, { recursive: true, force: true });
    const reason = 'FULL-DISK PROOF SKIPPED: cannot mount a tmpfs here (needs root and mount permission)';
    if (inCI) throw new Error(reason);
    console.error(`\n*** ${reason} ***\n`);
    t.skip(reason);
    return;
  }
  t.after(async () => {
    execFileSync('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });
  await mkdir(join(mountPoint, 'Maildir'));
  const e = await prepare(t, d, user, d.popsPort, join(mountPoint, 'Maildir'));
  const full = await runToEnd(e);
  assert.equal(full.code, 75, full.stderr);
  const error = full.events.find((ev) => ev.type === 'account') as {
    status: string;
    code: string;
    message: string;
  };
  assert.equal(error.status, 'error');
  assert.equal(error.code, 'ERR_FETCH_DELIVERY');
  assert.match(error.message, /disk is full/);
  assert.equal(await onServer(source), 100, 'nothing may be deleted on the server');
  execFileSync('mount', ['-o', 'remount,size=16m', mountPoint]);
  const resumed = await runToEnd(e);
  assert.equal(resumed.code, 0, resumed.stderr);
  await assertExactlyOnce(e.maildir, fixtures, contents);
  assert.equal(await onServer(source), 0);
});
