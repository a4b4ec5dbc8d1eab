// `popgate fetch --watch` as users run it (a real CLI child): one real 10 s interval observed
// against Dovecot (mail added while it waits is fetched by the next round), the LOGIN-DELAY floor
// against a scripted server that announces one, a configuration error ends the loop, and a second
// signal exits at once while a delivery is still running. The schedule itself (jitter bounds, the
// floor) is unit-tested with an injected clock in test/unit/fetch-watch.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestCerts } from '../helpers/certs.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { maildropScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';
import { writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';
import { appendTestLog, removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const USERS = ['watch@example.test', 'twice@example.test', 'cfg@example.test'];
let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: USERS });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

interface Watched {
  /** Resolves with the first match of `re` in stdout+stderr so far (waiting for it). */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  kill(signal: NodeJS.Signals): void;
  result: Promise<{ code: number | null; out: string }>;
}

function watch(args: string[], env: NodeJS.ProcessEnv): Watched {
  const child = spawn(process.execPath, [BIN, 'fetch', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  const onText = (c: Buffer) => {
    out += c.toString('utf8');
    for (const w of waiters.splice(0)) {
      const m = w.re.exec(out);
      if (m) w.resolve(m);
      else waiters.push(w);
    }
  };
  child.stdout.on('data', onText);
  child.stderr.on('data', onText);
  const result = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once('close', (code) => {
      appendTestLog('fetch-cli-watch', out);
      resolve({ code, out });
    }),
  );
  return {
    result,
    kill: (signal) => child.kill(signal),
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const m = re.exec(out);
        if (m) return resolve(m);
        waiters.push({ re, resolve });
        void result.then((r) => reject(new Error(`popgate exited ${r.code} before ${re}:\n${r.out}`)));
      }),
  };
}

async function dovecotSetup(t: { after(fn: () => Promise<void>): void }, user: string, count: number) {
  const d = await dovecot();
  const dir = await mkdtemp(join(tmpdir(), 'popgate-watch-'));
  // Popgate's state and Maildir go to the run's secret scan first; `token` is the token_file
  // fixture (plain text by design).
  t.after(() => removeTempTree(dir, { except: ['token'] }));
  const source = await d.maildirOf(user);
  await writeUniformMessages(source, count, 1000, { owner: { uid: d.mailUid, gid: d.mailGid } });
  await writeFile(join(dir, 'token'), await d.mintToken(user, { expiresIn: 3600 }), { mode: 0o600 });
  await writeFile(join(dir, 'ca.pem'), d.caCertPem);
  const base = [
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
  return { d, dir, source, base, env };
}

test('--watch --every 10s: the next round comes after the announced 9-11 s and fetches mail added meanwhile', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await dovecotSetup(t, 'watch@example.test', 3);
  const run = watch(
    [...s.base, '--to', join(s.dir, 'Maildir'), '--json', '--watch', '--every', '10s'],
    s.env,
  );
  t.after(() => run.kill('SIGKILL'));
  await run.waitFor(/"type":"account".*"fetched":3/);
  const next = await run.waitFor(/"type":"note","message":"popgate: next fetch in (\d+) s/);
  const seconds = Number(next[1]);
  assert.ok(seconds >= 9 && seconds <= 11, `next fetch in ${seconds} s for --every 10s`);
  // New mail while it waits: the next round (about 10 s later, observed once) picks it up.
  await writeUniformMessages(s.source, 2, 1000, {
    owner: { uid: s.d.mailUid, gid: s.d.mailGid },
    firstIndex: 100,
  });
  await run.waitFor(/"type":"account"[^\n]*"fetched":2/);
  run.kill('SIGTERM');
  const { code, out } = await run.result;
  assert.equal(code, 0, out);
  assert.equal(out.match(/"type":"account"/g)?.length, 2, 'two rounds, then the signal ended the wait');
});

test('--watch waits at least the LOGIN-DELAY the server announces, even with --every 10s', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    implicitTls: true,
    script: maildropScript({
      messages: [],
      capa: ['UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL OAUTHBEARER', 'LOGIN-DELAY 900'],
    }),
  });
  t.after(() => server.close());
  const dir = await mkdtemp(join(tmpdir(), 'popgate-watch-delay-'));
  // Popgate's state and Maildir go to the run's secret scan first; `token` is the token_file
  // fixture (plain text by design).
  t.after(() => removeTempTree(dir, { except: ['token'] }));
  await writeFile(join(dir, 'token'), 'not-checked-by-this-server', { mode: 0o600 });
  const env = { ...process.env, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') };
  const run = watch(
    [
      '--host',
      '127.0.0.1',
      '--port',
      String(server.port),
      '--ca',
      certs.caCertPath,
      '--user',
      'u@example.test',
      '--token-file',
      join(dir, 'token'),
      '--to',
      join(dir, 'Maildir'),
      '--json',
      '--watch',
      '--every',
      '10s',
    ],
    env,
  );
  t.after(() => run.kill('SIGKILL'));
  const next = await run.waitFor(/"type":"note","message":"popgate: next fetch in (\d+) s/);
  const seconds = Number(next[1]);
  assert.ok(seconds >= 900 && seconds <= 990, `next fetch in ${seconds} s with LOGIN-DELAY 900`);
  run.kill('SIGTERM');
  assert.equal((await run.result).code, 0);
});

test('--watch stops on a configuration error instead of repeating it (exit 78)', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await dovecotSetup(t, 'cfg@example.test', 1);
  const args = [...s.base, '--to', join(s.dir, 'Maildir'), '--watch', '--every', '10s'];
  args[args.indexOf('--ca') + 1] = join(s.dir, 'no-such-ca.pem');
  const { code, out } = await watch(args, s.env).result;
  assert.equal(code, 78, out);
  assert.match(out, /cannot read the CA file/);
  assert.doesNotMatch(out, /next fetch in/);
});

test('--watch: a second SIGTERM exits at once (75) while the delivery in flight still runs', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const s = await dovecotSetup(t, 'twice@example.test', 2);
  const pidFile = join(s.dir, 'delivery.pid');
  await mkdir(join(s.dir, 'out'));
  const run = watch(
    [...s.base, '--watch', '--every', '10s', '--deliver', `echo $$ > ${pidFile}; exec sleep 600`],
    s.env,
  );
  let deliveryPid = 0;
  t.after(() => {
    run.kill('SIGKILL');
    if (deliveryPid > 0) {
      try {
        process.kill(deliveryPid, 'SIGKILL');
      } catch {}
    }
  });
  // The delivery command is running (it wrote its pid) when the first signal comes.
  for (let i = 0; i < 400 && deliveryPid === 0; i++) {
    deliveryPid = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
    if (deliveryPid === 0) await sleep(25);
  }
  assert.ok(deliveryPid > 0);
  run.kill('SIGTERM');
  await run.waitFor(/send it again to stop at once/);
  run.kill('SIGTERM');
  const { code, out } = await run.result;
  assert.equal(code, 75, out);
  // The first signal alone would have waited for this delivery (600 s); it is still running.
  assert.doesNotThrow(() => process.kill(deliveryPid, 0), 'popgate exited before the delivery finished');
});
