// The token store key in a real OS keyring: `popgate` (a child process, bin/popgate.js) inside
// `dbus-run-session` with an unlocked gnome-keyring-daemon (the freedesktop Secret Service), a
// client-credentials login against the real oidc-provider. Proves the key lands in the keyring
// (and nowhere on disk), tokens round-trip through the store, `token status --json` names the
// keyring; then, without D-Bus, that a fresh install falls back to the key file with a clear note
// and that a keyring-protected store is not silently re-keyed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type AuthorizationServer,
  clientCredentialsAccountToml,
  startTestAuthorizationServer,
  tempDir,
} from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';

const root = new URL('../../', import.meta.url).pathname;
const bin = join(root, 'bin', 'popgate.js');
const JWT = /eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/;

let as: AuthorizationServer;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 300 });
  work = await tempDir('popgate-keyring-');
});

after(async () => {
  await as.stop();
  // The client secret files and `token print`'s output are this test's fixtures and results,
  // plain text by design.
  await work.cleanup({ except: ['**/client-secret', '**/print.out'] });
});

/** A home with a config file holding one client-credentials account, `app`. */
async function makeHome(name: string): Promise<{ home: string; env: Record<string, string> }> {
  const home = join(work.dir, name);
  for (const sub of ['config/popgate', 'data', 'state', 'run', 'out'])
    await mkdir(join(home, sub), { recursive: true, mode: 0o700 });
  const secretFile = join(home, 'client-secret');
  await writeFile(secretFile, `${as.clients.secretBasic.clientSecret}\n`, { mode: 0o600 });
  await writeFile(
    join(home, 'config', 'popgate', 'config.toml'),
    clientCredentialsAccountToml(as, 'app', as.clients.secretBasic.clientId, [
      `client_secret_file = "${secretFile}"`,
    ]),
  );
  const env: Record<string, string> = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_DATA_HOME: join(home, 'data'),
    XDG_STATE_HOME: join(home, 'state'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    OUT: join(home, 'out'),
    BIN: bin,
  };
  // Keep the test run's secret scan wired into the children.
  for (const name of ['POPGATE_SECRET_LEDGER', 'POPGATE_TEST_LOG_DIR', 'NODE_OPTIONS']) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  return { home, env };
}

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const popgate = (args: string[], env: Record<string, string>) => run(process.execPath, [bin, ...args], env);

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const full = join(dir, name);
    if ((await stat(full)).isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

// Runs inside the D-Bus session: unlock a fresh login keyring, log in, read status, print the
// token, and read the keyring entry back with the same module (reporting only the key's id).
const SESSION_SCRIPT = `
set -u
printf '%s' "$KEYRING_UNLOCK" | gnome-keyring-daemon --unlock --components=secrets >"$OUT/gkd.out" 2>"$OUT/gkd.err"
node "$BIN" login --account app >"$OUT/login.out" 2>"$OUT/login.err"; echo $? >"$OUT/login.rc"
node "$BIN" token status --json >"$OUT/status.out" 2>"$OUT/status.err"; echo $? >"$OUT/status.rc"
node "$BIN" token print --account app >"$OUT/print.out" 2>"$OUT/print.err"; echo $? >"$OUT/print.rc"
node --import tsx "$OUT/check.mts" >"$OUT/check.out" 2>"$OUT/check.err"; echo $? >"$OUT/check.rc"
`;

const CHECK_SCRIPT = (dataDir: string) => `
import keyring from ${JSON.stringify(join(root, 'node_modules/@napi-rs/keyring/index.js'))};
import { keyIdOf } from ${JSON.stringify(join(root, 'src/oauth/stores/key-source.ts'))};
const entry = new keyring.AsyncEntry('popgate', ${JSON.stringify(`token-store:${dataDir}`)}, { linux: { store: 'secret-service' } });
const value = await entry.getPassword();
const key = value === null ? undefined : Buffer.from(value, 'base64');
process.stdout.write(JSON.stringify({ present: key !== undefined, length: key?.length ?? 0, kid: key ? keyIdOf(key) : null }));
`;

describe('token store key in the OS keyring (gnome-keyring over D-Bus)', () => {
  let session: { home: string; env: Record<string, string> };
  const out = (name: string) => readFile(join(session.home, 'out', name), 'utf8').catch(() => '');

  before(async () => {
    session = await makeHome('desktop');
    await writeFile(
      join(session.home, 'out', 'check.mts'),
      CHECK_SCRIPT(join(session.home, 'data', 'popgate')),
    );
  });

  test('login stores the key in the keyring, tokens round-trip, and token status names the keyring', async (t) => {
    if (!requirePeer(t, 'dbus-run-session') || !requirePeer(t, 'gnome-keyring-daemon')) return;
    const grantsBefore = as.grantCounts().client_credentials ?? 0;
    const result = await run('dbus-run-session', ['--', 'sh', '-c', SESSION_SCRIPT], {
      ...session.env,
      KEYRING_UNLOCK: 'keyring-login-password',
    });
    assert.equal(result.code, 0, result.stderr);
    const login = await out('login.err');
    assert.equal((await out('login.rc')).trim(), '0', `login failed: ${login} ${await out('gkd.err')}`);
    assert.match(login, /Logged in account app/);
    assert.match(login, /key: keyring, OS keyring \(service popgate/);
    assert.doesNotMatch(login, /note:/);

    // The key is in the keyring, and it is the key the token file was sealed with.
    assert.equal((await out('check.rc')).trim(), '0', await out('check.err'));
    const check = JSON.parse(await out('check.out')) as { present: boolean; length: number; kid: string };
    assert.deepEqual([check.present, check.length], [true, 32]);
    const dataDir = join(session.home, 'data', 'popgate');
    const envelope = JSON.parse(await readFile(join(dataDir, 'tokens', 'app.token'), 'utf8')) as {
      kid: string;
    };
    assert.equal(envelope.kid, check.kid);
    await assert.rejects(stat(join(dataDir, 'token.key')), { code: 'ENOENT' }, 'no key file on disk');
    assert.equal((await readFile(join(dataDir, 'key-source'), 'utf8')).trim(), 'keyring');

    // token status names the keyring; token print hands back the stored token (no second grant).
    assert.equal((await out('status.rc')).trim(), '0', await out('status.err'));
    const status = JSON.parse(await out('status.out'));
    assert.equal(status.store.keySource, 'keyring');
    assert.match(status.store.key, /^OS keyring \(service popgate, entry token-store:/);
    assert.equal(status.store.keySelection.source, 'keyring');
    assert.equal(status.accounts[0].account, 'app');
    assert.equal(status.accounts[0].health, 'ok');
    assert.equal((await out('print.rc')).trim(), '0', await out('print.err'));
    const token = (await out('print.out')).trim();
    assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(
      (as.grantCounts().client_credentials ?? 0) - grantsBefore,
      1,
      'one grant: print read the store',
    );

    // Nothing under the home (keyring files included) holds the token in plain text, and only
    // token print's stdout shows it.
    for (const file of await filesUnder(session.home)) {
      if (file.endsWith('print.out')) continue;
      assert.ok(!(await readFile(file, 'latin1')).includes(token), `${file} holds the token`);
      if (file.includes(`${join(session.home, 'out')}/`))
        assert.doesNotMatch(await readFile(file, 'utf8'), JWT, `${file} shows a token`);
    }
  });

  test('without D-Bus, a keyring-protected store is refused with what to do, and nothing is re-keyed', async (t) => {
    if (!requirePeer(t, 'dbus-run-session') || !requirePeer(t, 'gnome-keyring-daemon')) return;
    const dataDir = join(session.home, 'data', 'popgate');
    const tokenFile = join(dataDir, 'tokens', 'app.token');
    const before = await readFile(tokenFile, 'utf8').catch(() => undefined);
    assert.ok(before, 'the previous test logged in');
    const result = await popgate(['token', 'print', '--account', 'app'], session.env);
    assert.equal(result.code, 78, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /the token key is in the OS keyring \(recorded in .*key-source\), which cannot be used now/,
    );
    assert.match(result.stderr, /no D-Bus session bus/);
    assert.match(result.stderr, /POPGATE_KEY_SOURCE=file/);
    assert.equal(await readFile(tokenFile, 'utf8'), before);
    await assert.rejects(stat(join(dataDir, 'token.key')), { code: 'ENOENT' });
  });
});

describe('without a usable keyring', () => {
  test('a fresh login falls back to the key file with a note naming the D-Bus failure', async (t) => {
    if (!requirePeer(t, 'dbus-run-session')) return;
    const { home, env } = await makeHome('headless-broken-bus');
    // A bus address that leads nowhere: the real module loads and the Secret Service call fails.
    const bogus = { ...env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'run', 'no-bus')}` };
    const login = await popgate(['login', '--account', 'app'], bogus);
    assert.equal(login.code, 0, login.stderr);
    assert.match(
      login.stderr,
      /popgate: note: the OS keyring is not usable \(.+\); the token key is kept in the key file .*token\.key instead/,
    );
    assert.match(login.stderr, /Logged in account app/);
    const dataDir = join(home, 'data', 'popgate');
    assert.equal((await stat(join(dataDir, 'token.key'))).mode & 0o777, 0o600);
    assert.equal((await readFile(join(dataDir, 'key-source'), 'utf8')).trim(), 'file');
    const status = await popgate(['token', 'status', '--json'], bogus);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.equal(parsed.store.keySource, 'key-file');
    assert.equal(parsed.accounts[0].health, 'ok');
    assert.doesNotMatch(status.stderr, /note:/, 'the recorded choice needs no note any more');
    const print = await popgate(['token', 'print', '--account', 'app'], bogus);
    assert.equal(print.code, 0, print.stderr);
    assert.match(print.stdout.trim(), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  test('with no D-Bus session at all the note says so, and POPGATE_KEY_SOURCE=keyring is an error', async () => {
    const { env } = await makeHome('headless-no-bus');
    const forced = await popgate(['login', '--account', 'app'], { ...env, POPGATE_KEY_SOURCE: 'keyring' });
    assert.equal(forced.code, 78, forced.stderr);
    assert.match(
      forced.stderr,
      /POPGATE_KEY_SOURCE=keyring, but the OS keyring cannot be used: no D-Bus session bus/,
    );
    const login = await popgate(['login', '--account', 'app'], env);
    assert.equal(login.code, 0, login.stderr);
    assert.match(
      login.stderr,
      /note: the OS keyring is not usable \(no D-Bus session bus \(DBUS_SESSION_BUS_ADDRESS is not set\)/,
    );
  });
});
