// The guarantee, proven with the real CLI as a child process against a real Dovecot: SIGKILL at
// 50 random moments during a 500-message fetch with --delete. After the reruns every message is
// in the Maildir exactly once, byte for byte, and none is left on the server.
// (Connection cuts and a full disk: fetch-crash-net.test.ts.)
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { type FixtureMessage, writeMixedMessages, writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: ['kill@example.test'] });
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

test('SIGKILL at 50 random moments of a 500-message fetch with --delete: every message exactly once, none left', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const user = 'kill@example.test';
  const source = await d.maildirOf(user);
  const owner = { uid: d.mailUid, gid: d.mailGid };
  const fixtures = await writeMixedMessages(source, { count: 500, seed: 11, owner });
  const contents = await sourceContents(fixtures);
  const e = await prepare(t, d, user, d.popsPort);
  const seed = Number(process.env.POPGATE_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (POPGATE_CRASH_SEED to replay)`);
  const random = prng(seed);
  // Calibrate: how long a whole 500-message run takes from the first JSON line to exit
  // (separate state and Maildir, no --delete), so kill moments spread over the real work.
  const calibration = {
    ...e,
    args: e.args.filter((a) => a !== '--delete').map((a) => (a === e.maildir ? `${e.dir}/calibration` : a)),
    env: { ...e.env, XDG_STATE_HOME: `${e.dir}/calibration-state` },
  };
  const probe = startCli(calibration);
  let firstLine = 0;
  const watch = setInterval(() => {
    if (firstLine === 0 && probe.lines.length > 0) firstLine = Date.now();
  }, 2);
  await probe.exit;
  clearInterval(watch);
  const window = Math.max(300, Date.now() - firstLine);
  t.diagnostic(`a whole run takes ${window} ms after the session is up`);
  let next = 100_000;
  let kills = 0;
  const phases = new Map<string, number>();
  for (let attempt = 0; kills < 50 && attempt < 150; attempt++) {
    if ((await onServer(source)) === 0) {
      // A run got through QUIT: deliver another 500 so later kills land mid-fetch again.
      const more = await writeUniformMessages(source, 500, 3000, { firstIndex: next, seed: 11, owner });
      next += 500;
      fixtures.push(...more);
      for (const [id, bytes] of await sourceContents(more)) contents.set(id, bytes);
    }
    const run = startCli(e);
    const early = random() < 0.15;
    await new Promise<void>((resolve) => {
      const fire = () => {
        run.child.kill('SIGKILL');
        resolve();
      };
      if (early) {
        // Startup, recovery of the previous run's intents, TLS, authentication.
        setTimeout(fire, random() * 2000);
        return;
      }
      const poll = setInterval(() => {
        if (run.lines.length > 0 || run.child.exitCode !== null) {
          clearInterval(poll);
          setTimeout(fire, random() * window);
        }
      }, 2);
    });
    const { code, signal } = await run.exit;
    const last = run.lines.filter(Boolean).at(-1);
    const lastPhase = last ? (JSON.parse(last) as { phase?: string }).phase : undefined;
    const phase = signal === 'SIGKILL' ? (lastPhase ?? 'startup') : `exited ${code}`;
    if (signal === 'SIGKILL') kills++;
    phases.set(phase, (phases.get(phase) ?? 0) + 1);
  }
  assert.equal(kills, 50);
  t.diagnostic(`kills by phase: ${JSON.stringify(Object.fromEntries(phases))}`);
  const final = await runToEnd(e);
  assert.equal(final.code, 0, final.stderr);
  const again = await runToEnd(e);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.events.find((ev) => ev.type === 'account') as { fetched: number }).fetched, 0);
  await assertExactlyOnce(e.maildir, fixtures, contents);
  assert.equal(await onServer(source), 0, 'messages left on the server');
});
