// The guarantee under network and disk faults, with the real CLI as a child process against a
// real Dovecot: a TCP proxy cutting the connection at random byte offsets, and a full disk (tmpfs).
// After the reruns every message is in the Maildir exactly once and none is left on the server.
// (SIGKILL at random moments: fetch-crash-kill.test.ts.)
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { type FixtureMessage, writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { inCI, requirePeer } from '../helpers/peers.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: ['cut@example.test', 'full@example.test'] });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

/** A seeded PRNG so a failing run can be replayed (the seed is printed). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Env {
  dir: string;
  maildir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

async function prepare(
  t: { after(fn: () => Promise<void>): void },
  d: DovecotInstance,
  user: string,
  port: number,
  to?: string,
): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, await d.mintToken(user, { expiresIn: 7200 }), { mode: 0o600 });
  await writeFile(join(dir, 'ca.pem'), d.caCertPem);
  const maildir = to ?? join(dir, 'Maildir');
  const args = [
    'fetch',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--ca',
    join(dir, 'ca.pem'),
    '--user',
    user,
  ];
  args.push('--token-file', tokenFile, '--to', maildir, '--delete', '--json');
  const env = { ...process.env, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') };
  return { dir, maildir, args, env };
}

interface CliRun {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(e: Env): CliRun {
  const child = spawn(process.execPath, [BIN, ...e.args], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, stderr, exit };
}

async function runToEnd(
  e: Env,
): Promise<{ code: number | null; events: Record<string, unknown>[]; stderr: string }> {
  const run = startCli(e);
  const { code } = await run.exit;
  return {
    code,
    events: run.lines.filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: run.stderr.join(''),
  };
}

async function onServer(maildir: string): Promise<number> {
  return (await readdir(join(maildir, 'new'))).length + (await readdir(join(maildir, 'cur'))).length;
}

/** Every fixture exactly once in the Maildir, byte for byte (LF, with a final newline), nothing else. */
async function assertExactlyOnce(
  maildir: string,
  fixtures: readonly FixtureMessage[],
  contents: Map<string, Buffer>,
): Promise<void> {
  const byId = new Map<string, number>();
  const names = await readdir(join(maildir, 'new'));
  for (const name of names) {
    const bytes = await readFile(join(maildir, 'new', name));
    const id = /^Message-ID:\s*(\S+)/im.exec(bytes.toString('latin1'))?.[1] ?? `?${name}`;
    byId.set(id, (byId.get(id) ?? 0) + 1);
    const expected = contents.get(id);
    assert.ok(expected, `unexpected message ${id}`);
    assert.ok(bytes.equals(expected), `message ${id} differs from the source`);
  }
  for (const f of fixtures)
    assert.equal(byId.get(f.messageId), 1, `${f.messageId} delivered ${byId.get(f.messageId) ?? 0} times`);
  assert.equal(names.length, fixtures.length);
  assert.deepEqual(await readdir(join(maildir, 'tmp')), [], 'nothing left in tmp/');
}

async function sourceContents(fixtures: readonly FixtureMessage[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const f of fixtures) {
    const lf = Buffer.from((await readFile(f.path)).toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    out.set(f.messageId, f.endsWithNewline ? lf : Buffer.concat([lf, Buffer.from('\n')]));
  }
  return out;
}

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
