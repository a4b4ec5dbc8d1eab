// The guarantee under network and disk faults, with the real CLI as a child process against a
// real Dovecot: a TCP proxy cutting the connection at random byte offsets, and a full disk (tmpfs).
// After the reruns every message is in the Maildir exactly once and none is left on the server.
// (SIGKILL at random moments: fetch-crash-kill.test.ts.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
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

/** A TCP proxy that cuts each connection after a chosen number of server-to-client bytes. */
async function cuttingProxy(
  target: number,
): Promise<{ port: number; cutAfter: (n: number | undefined) => void; server: Server }> {
  let limit: number | undefined;
  const server = createServer((client: Socket) => {
    const upstream = netConnect({ host: '127.0.0.1', port: target });
    let seen = 0;
    const cut = limit;
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('data', (chunk: Buffer) => {
      if (cut !== undefined && seen + chunk.length >= cut) {
        client.write(chunk.subarray(0, Math.max(0, cut - seen)), kill);
        seen = cut;
        return;
      }
      seen += chunk.length;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, cutAfter: (n) => (limit = n), server };
}

test('the connection cut by a proxy at 30 random byte offsets: every message exactly once, none left', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const user = 'cut@example.test';
  const source = await d.maildirOf(user);
  const fixtures = await writeUniformMessages(source, 500, 4000, {
    seed: 5,
    owner: { uid: d.mailUid, gid: d.mailGid },
  });
  const contents = await sourceContents(fixtures);
  const proxy = await cuttingProxy(d.popsPort);
  t.after(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));
  const e = await prepare(t, d, user, proxy.port);
  const seed = Number(process.env.POPGATE_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed}`);
  const random = prng(seed);
  const codes = new Map<number | null, number>();
  let cuts = 0;
  let next = 100_000;
  for (let attempt = 0; cuts < 30 && attempt < 90; attempt++) {
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
    // 500 messages are about 2.1 MB of server bytes; offsets cover TLS setup to QUIT.
    proxy.cutAfter(Math.floor(random() * 2_200_000));
    const run = await runToEnd(e);
    codes.set(run.code, (codes.get(run.code) ?? 0) + 1);
    assert.ok(run.code === 0 || run.code === 75, `exit ${run.code}: ${run.stderr}`);
    if (run.code === 75) cuts++;
  }
  assert.equal(cuts, 30);
  t.diagnostic(`exit codes of cut runs: ${JSON.stringify(Object.fromEntries(codes))}`);
  proxy.cutAfter(undefined);
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
