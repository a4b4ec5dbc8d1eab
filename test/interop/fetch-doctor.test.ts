// `popgate doctor` against a real Dovecot: a healthy account reports DNS, TCP, TLS, CAPA, the
// token and file modes as ok; a wrong CA, an expired token and a loose token file are each named
// with the fix, and the exit code says which kind of problem it is; `~` in token_file is the file
// fetch reads (a real CLI child with only HOME set).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDevCa } from '../../dev/certs.ts';
import { missingPop3Scopes } from '../../src/cli/commands/doctor.ts';
import { main } from '../../src/cli/main.ts';
import { resolvePaths } from '../../src/cli/paths.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import { type DovecotInstance, sharedDovecot } from '../helpers/dovecot.ts';
import { requirePeer } from '../helpers/peers.ts';
import { appendTestLog, removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
/** The test runner's choice of compiled code for CLI children, passed on. */
const runDist = (): Record<string, string> =>
  process.env.POPGATE_RUN_DIST ? { POPGATE_RUN_DIST: process.env.POPGATE_RUN_DIST } : {};

const USER = 'doctor@example.test';
const dovecot = sharedDovecot({ users: [USER] });

async function run(
  t: { after(fn: () => Promise<void>): void },
  account: Record<string, string | number>,
  prepareHome?: (home: string) => Promise<void>,
): Promise<{ code: number; out: string }> {
  const home = await mkdtemp(join(tmpdir(), 'popgate-doctor-'));
  // `token` is this test's token_file fixture: plain text by design.
  t.after(() => removeTempTree(home, { except: ['token'] }));
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_STATE_HOME: join(home, 'state'),
    XDG_DATA_HOME: join(home, 'data'),
  };
  const paths = resolvePaths(env);
  const toml = Object.entries(account)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v.replace('HOME', home))}`)
    .join('\n');
  await mkdir(join(home, 'config', 'popgate'), { recursive: true });
  await writeFile(paths.configFile, `[accounts.box]\n${toml}\n`);
  // doctor's report (stdout) and any error (stderr) go to the run's secret scan as written.
  const ctx = capturedCliContext(env, { log: 'fetch-doctor', args: ['doctor'] });
  const d = await dovecot();
  await writeFile(join(home, 'ca.pem'), d.caCertPem);
  await writeFile(join(home, 'token'), await d.mintToken(USER, { claims: { scope: 'pop3' } }), {
    mode: 0o600,
  });
  await prepareHome?.(home);
  const code = await main(['doctor'], ctx);
  return { code, out: ctx.stdout.text };
}

function base(d: DovecotInstance): Record<string, string | number> {
  return { user: USER, host: '127.0.0.1', port: d.popsPort, ca: 'HOME/ca.pem', token_file: 'HOME/token' };
}

test('doctor: a healthy account passes every check', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const { code, out } = await run(t, base(d));
  t.diagnostic(out);
  assert.equal(code, 0, out);
  for (const check of ['dns', 'tcp', 'tls', 'capa', 'token'])
    assert.match(out, new RegExp(`^  ${check}\\s+ok`, 'm'));
  assert.match(out, /TLSv1\.[23]/);
  assert.match(out, /SASL .*OAUTHBEARER.*PIPELINING yes; UIDL yes/);
  assert.match(out, /scopes: pop3/);
  assert.match(out, /no problems found/);
});

test('doctor: an untrusted certificate is a failure with the fix (exit 78)', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const home = await mkdtemp(join(tmpdir(), 'popgate-doctor-ca-'));
  t.after(() => removeTempTree(home));
  const other = await createDevCa(home);
  const bad = await run(t, { ...base(d), ca: other.caCertPath });
  assert.equal(bad.code, 78, bad.out);
  assert.match(bad.out, /tls\s+FAIL .*NOT trusted/);
  assert.match(bad.out, /fix: if the server uses a private CA, set ca =/);
});

test('doctor: a loose token file is named with chmod 600', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const home = await mkdtemp(join(tmpdir(), 'popgate-doctor-tok-'));
  t.after(() => removeTempTree(home, { except: ['loose'] }));
  await writeFile(join(home, 'loose'), await d.mintToken(USER), { mode: 0o644 });
  const { code, out } = await run(t, { ...base(d), token_file: join(home, 'loose') });
  assert.notEqual(code, 0);
  assert.match(out, /token\s+FAIL .*readable by others/);
  assert.match(out, /chmod 600/);
});

test('doctor: a damaged UIDL journal is a failure with exit 65, as fetch would exit', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const { code, out } = await run(t, base(d), async (home) => {
    const dir = join(home, 'state', 'popgate', 'accounts', 'box');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A damaged record before the last one: fetch refuses the file (ERR_FETCH_STATE, exit 65).
    await writeFile(join(dir, 'uidl.journal'), 'not a journal record\n{"t":"D"}\n', { mode: 0o600 });
  });
  assert.equal(code, 65, out);
  assert.match(out, /state\s+FAIL .*damaged at line 1.*ERR_FETCH_STATE/);
  assert.doesNotMatch(out, /no problems found/);
});

test('doctor: a healthy journal is reported with its record count', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const { code, out } = await run(t, base(d));
  assert.equal(code, 0, out);
  assert.match(out, /state\s+ok\s+no fetch state yet/);
});

test('doctor judges scopes by what POP3 needs: OpenID scopes never make a warning', () => {
  assert.deepEqual(missingPop3Scopes(['openid', 'pop3', 'offline_access', 'profile'], ['pop3']), []);
  assert.deepEqual(missingPop3Scopes(['openid', 'pop3', 'offline_access'], ['openid']), ['pop3']);
  assert.deepEqual(
    missingPop3Scopes(['https://outlook.office.com/POP.AccessAsUser.All', 'offline_access'], []),
    ['https://outlook.office.com/POP.AccessAsUser.All'],
  );
});

test('doctor (a real CLI child) expands ~ in token_file and checks the file fetch reads', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const home = await mkdtemp(join(tmpdir(), 'popgate-doctor-home-'));
  t.after(() => removeTempTree(home, { except: ['tok'] }));
  await mkdir(join(home, '.config', 'popgate'), { recursive: true });
  await writeFile(join(home, 'ca.pem'), d.caCertPem);
  await writeFile(join(home, 'tok'), await d.mintToken(USER, { claims: { scope: 'pop3' } }), { mode: 0o600 });
  await writeFile(
    join(home, '.config', 'popgate', 'config.toml'),
    `[accounts.box]\nuser = "${USER}"\nhost = "127.0.0.1"\nport = ${d.popsPort}\nca = "~/ca.pem"\ntoken_file = "~/tok"\n`,
  );
  // Only HOME: the config, state and data directories all follow from it, and so does `~`.
  const doctor = async () => {
    const child = spawn(process.execPath, [BIN, 'doctor'], {
      env: { HOME: home, PATH: process.env.PATH ?? '', ...runDist() },
      cwd: home,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    appendTestLog('fetch-doctor', out);
    return { code, out };
  };
  const healthy = await doctor();
  assert.equal(healthy.code, 0, healthy.out);
  assert.match(healthy.out, /^ {2}token\s+ok/m);
  assert.ok(healthy.out.includes(`files   ok    token_file ${home}/tok mode 600`), healthy.out);
  await chmod(join(home, 'tok'), 0o644);
  const loose = await doctor();
  assert.equal(loose.code, 78, loose.out);
  assert.ok(loose.out.includes(`token_file ${home}/tok is mode 644`), loose.out);
  assert.ok(loose.out.includes(`fix: chmod 600 ${home}/tok`), loose.out);
});
