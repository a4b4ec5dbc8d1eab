// `popgate fetch` as users run it, against a real Dovecot: --json parsed, mbox and delivery
// command destinations (a failing command: not recorded, not deleted, reported), the account
// lock, SIGTERM finishing cleanly, and the progress display in a real terminal (tmux).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';
import { removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const USERS = [
  'json@example.test',
  'mbox@example.test',
  'cmd@example.test',
  'lock@example.test',
  'term@example.test',
  'tty@example.test',
  'env@example.test',
];
let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: USERS });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

interface Setup {
  dir: string;
  source: string;
  base: string[];
  env: NodeJS.ProcessEnv;
}

async function setup(
  t: { after(fn: () => Promise<void>): void },
  user: string,
  count: number,
  size = 3000,
): Promise<Setup> {
  const d = await dovecot();
  const dir = await mkdtemp(join(tmpdir(), 'popgate-cli-'));
  // Popgate's state, Maildir and delivered files go to the run's secret scan first; `token` is
  // this test's token_file fixture (plain text by design).
  t.after(() => removeTempTree(dir, { except: ['token'] }));
  const source = await d.maildirOf(user);
  await writeUniformMessages(source, count, size, { owner: { uid: d.mailUid, gid: d.mailGid } });
  await writeFile(join(dir, 'token'), await d.mintToken(user, { expiresIn: 3600 }), { mode: 0o600 });
  await writeFile(join(dir, 'ca.pem'), d.caCertPem);
  const base = [
    'fetch',
    '--host',
    '127.0.0.1',
    '--port',
    String(d.popsPort),
    '--ca',
    join(dir, 'ca.pem'),
    '--user',
    user,
    '--token-file',
    join(dir, 'token'),
  ];
  const env = { ...process.env, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') };
  return { dir, source, base, env };
}

/** `popgate fetch` as a child; `result` settles with its exit code and output once it closes. */
function startCli(s: Setup, args: string[]) {
  const child = spawn(process.execPath, [BIN, ...s.base, ...args], {
    env: s.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, result };
}

function cli(s: Setup, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return startCli(s, args).result;
}

async function serverCount(source: string): Promise<number> {
  return (await readdir(join(source, 'new'))).length + (await readdir(join(source, 'cur'))).length;
}

test('--json prints one parseable event per line, ending with the account result', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'json@example.test', 40);
  const run = await cli(s, ['--to', join(s.dir, 'Maildir'), '--json', '--max-size', '2000']);
  assert.equal(run.code, 0, run.stderr);
  const events = run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(events.some((e) => e.type === 'progress' && e.phase === 'done'));
  const result = events.at(-1) as {
    type: string;
    status: string;
    fetched: number;
    skippedTooLarge: unknown[];
  };
  assert.equal(result.type, 'account');
  assert.equal(result.status, 'ok');
  // Every message is 3,000 bytes on disk (more on the wire): all are over --max-size 2000.
  assert.equal(result.fetched, 0);
  assert.equal(result.skippedTooLarge.length, 40);
  const second = await cli(s, ['--to', join(s.dir, 'Maildir'), '--json', '--limit', '15']);
  const last = JSON.parse(second.stdout.trim().split('\n').at(-1)!) as { fetched: number; deferred: number };
  assert.deepEqual([last.fetched, last.deferred], [15, 25]);
});

test('mbox destination: every message once, separated and >From-quoted, readable back byte for byte', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'mbox@example.test', 30);
  const file = join(s.dir, 'inbox.mbox');
  const run = await cli(s, ['--to', `mbox:${file}`, '--delete']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /fetched 30 messages/);
  const text = await readFile(file, 'latin1');
  const parts = text.split(/^From MAILER-DAEMON .*\n/m).slice(1);
  assert.equal(parts.length, 30);
  assert.equal(await serverCount(s.source), 0);
  const again = await cli(s, ['--to', `mbox:${file}`]);
  assert.match(again.stdout, /no new mail/);
  assert.equal((await readFile(file, 'latin1')).length, text.length);
});

test('a failing delivery command: that message is not recorded, not deleted, and reported; the rest go through', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'cmd@example.test', 12);
  const out = join(s.dir, 'out');
  await mkdir(out);
  const failOn = '<fixture-1-7@';
  const script = join(s.dir, 'deliver.sh');
  await writeFile(
    script,
    `#!/bin/sh\nf=$(mktemp ${out}/.in.XXXXXX)\ncat > "$f"\nif [ ! -e ${s.dir}/let-all ] && grep -qF '${failOn}' "$f"; then rm -f "$f"; echo "mailbox refuses this one" >&2; exit 1; fi\nmv "$f" ${out}/$POPGATE_UIDL\n`,
    { mode: 0o700 },
  );
  const first = await cli(s, ['--deliver', script, '--delete']);
  assert.equal(first.code, 75, first.stdout + first.stderr);
  assert.match(first.stdout, /fetched 11 messages.*1 FAILED/);
  assert.match(first.stderr, /delivery command exited with status 1.*mailbox refuses this one/);
  assert.equal((await readdir(out)).length, 11);
  assert.equal(await serverCount(s.source), 1, 'only the failed message stays on the server');
  const retry = await cli(s, ['--deliver', script, '--delete']);
  assert.equal(retry.code, 75);
  await writeFile(join(s.dir, 'let-all'), '');
  const fixed = await cli(s, ['--deliver', script, '--delete']);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /fetched 1 message /);
  assert.equal((await readdir(out)).length, 12);
  assert.equal(await serverCount(s.source), 0);
});

test('the delivery command gets a minimal environment: no passphrase, no token, no unlisted variable', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'env@example.test', 2);
  const out = join(s.dir, 'out');
  await mkdir(out);
  const passphrase = `pass-${randomBytes(12).toString('hex')}`;
  recordTestSecret(passphrase);
  const token = (await readFile(join(s.dir, 'token'), 'utf8')).trim();
  Object.assign(s.env, {
    POPGATE_PASSPHRASE: passphrase,
    POPGATE_KEY_SOURCE: 'passphrase',
    SSH_AUTH_SOCK: '/tmp/agent.sock',
    SOME_UNLISTED: 'x',
    LANG: 'C.UTF-8',
    LC_TIME: 'C',
    TZ: 'UTC',
    TMPDIR: tmpdir(),
    USER: 'someone',
    LOGNAME: 'someone',
    SHELL: '/bin/sh',
  });
  const run = await cli(s, ['--deliver', `/bin/sh -c 'env' > ${out}/$POPGATE_UIDL; cat > /dev/null`]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const files = await readdir(out);
  assert.equal(files.length, 2);
  const allowed = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);
  // Set by the shells themselves, not passed by popgate.
  const shells = new Set(['PWD', 'OLDPWD', 'SHLVL', '_']);
  for (const file of files) {
    const text = await readFile(join(out, file), 'utf8');
    assert.ok(!text.includes(passphrase), 'the passphrase does not reach the command');
    assert.ok(!text.includes(token), 'the token does not reach the command');
    const vars = new Map(
      text
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    for (const name of vars.keys()) {
      assert.ok(
        allowed.has(name) || name.startsWith('LC_') || name.startsWith('POPGATE_') || shells.has(name),
        `unlisted variable ${name} reached the command`,
      );
    }
    assert.deepEqual([...vars.keys()].filter((n) => n.startsWith('POPGATE_')).sort(), [
      'POPGATE_ACCOUNT',
      'POPGATE_UIDL',
    ]);
    assert.equal(vars.get('POPGATE_UIDL'), file);
    assert.equal(vars.get('POPGATE_ACCOUNT'), 'default');
    for (const name of ['LANG', 'LC_TIME', 'TZ', 'TMPDIR', 'USER', 'LOGNAME', 'SHELL', 'PATH', 'HOME'])
      assert.equal(vars.get(name), s.env[name], `${name} is passed on`);
  }
});

test('a second fetch of the same account exits 75 with a clear message while the first runs', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'lock@example.test', 5);
  const slow = ['--deliver', 'sleep 3; cat > /dev/null'];
  const first = cli(s, slow);
  // Wait until the first holds the lock (its holder file appears).
  for (let i = 0; i < 200; i++) {
    const found = await readdir(join(s.dir, 'state', 'popgate', 'accounts', 'default')).catch(
      (): string[] => [],
    );
    if (found.includes('holder')) break;
    await sleep(50);
  }
  const second = await cli(s, slow);
  assert.equal(second.code, 75, second.stderr);
  assert.match(second.stderr, /another popgate fetch is running for account default \(process \d+/);
  assert.equal((await first).code, 0);
});

test('SIGTERM finishes the message in flight, records it, deletes what is recorded and QUITs', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await setup(t, 'term@example.test', 40);
  const out = join(s.dir, 'out');
  await mkdir(out);
  const { child, result } = startCli(s, ['--deliver', `sleep 0.1; cat > ${out}/$POPGATE_UIDL`, '--delete']);
  for (let i = 0; i < 400 && (await readdir(out)).length < 3 && child.exitCode === null; i++) await sleep(25);
  child.kill('SIGTERM');
  const { code, stdout, stderr } = await result;
  assert.equal(code, 75, stdout + stderr);
  assert.match(stdout, /stopped early by a signal/);
  const delivered = (await readdir(out)).length;
  assert.ok(delivered > 0 && delivered < 40);
  assert.equal(await serverCount(s.source), 40 - delivered, 'exactly the delivered messages were deleted');
});

test('the progress display in a real terminal (tmux): bar with messages, bytes, rate and ETA, then a summary', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'tmux')) return;
  const s = await setup(t, 'tty@example.test', 150);
  const session = `popgate-${process.pid}`;
  const env = Object.entries({ XDG_STATE_HOME: s.env.XDG_STATE_HOME, XDG_CONFIG_HOME: s.env.XDG_CONFIG_HOME })
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const command = `env ${env} ${process.execPath} ${BIN} ${s.base.join(' ')} --deliver 'sleep 0.02; cat >/dev/null'; echo EXIT=$?; sleep 30`;
  execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '20', command]);
  t.after(() => {
    execFileSync('tmux', ['kill-session', '-t', session]);
  });
  const capture = () => execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
  let midRun = '';
  let screen = '';
  for (let i = 0; i < 1200; i++) {
    screen = capture();
    if (!midRun && /default \|.*\| \d+\/150 msgs \| .* of .* \| .*\/s \| ETA \d+/.test(screen))
      midRun = screen;
    if (/EXIT=\d+/.test(screen)) break;
    await sleep(50);
  }
  t.diagnostic(`mid-run pane:\n${midRun}`);
  t.diagnostic(`final pane:\n${screen}`);
  assert.ok(midRun, `no live progress bar was seen; last pane:\n${screen}`);
  assert.match(screen, /default \|.*\| 150\/150 msgs/);
  assert.match(screen, /default: fetched 150 messages/);
  assert.match(screen, /EXIT=0/);
});
