// What a new user and a cron job see from the command line (issue 12): `popgate` as a real child
// process. Usage mistakes exit 64 with one line and a hint, not the whole help page; `token status`
// tells a script (exit 77) that an account must log in; a single configured account needs no
// --account; serve names every TLS file it cannot read; Ctrl-C while --watch waits says so.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { sharedDovecot } from '../helpers/dovecot.ts';
import { prepare } from '../helpers/fetch-crash.ts';
import { requirePeer } from '../helpers/peers.ts';
import { removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const run = promisify(execFile);

interface Home {
  dir: string;
  env: NodeJS.ProcessEnv;
}

const PASSPHRASE = 'a passphrase used only by this usage test';
recordTestSecret(PASSPHRASE);

async function home(t: { after(fn: () => Promise<void>): void }, config = ''): Promise<Home> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-usage-'));
  // What popgate wrote goes to the run's secret scan first (and the key the passphrase derives).
  t.after(() => removeTempTree(dir, { passphrases: [PASSPHRASE] }));
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_DATA_HOME: join(dir, 'data'),
    POPGATE_PASSPHRASE: PASSPHRASE,
    ...(process.env.POPGATE_RUN_DIST ? { POPGATE_RUN_DIST: process.env.POPGATE_RUN_DIST } : {}),
  };
  if (config) {
    await mkdir(join(dir, 'config', 'popgate'), { recursive: true });
    await writeFile(join(dir, 'config', 'popgate', 'config.toml'), config);
  }
  return { dir, env };
}

async function popgate(h: Home, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: h.env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const ONE_ACCOUNT = `[accounts.box]
provider = "custom"
host = "pop.example.test"
user = "box@example.test"
client_id = "popgate-usage-test"
authorization_endpoint = "https://idp.example.test/authorize"
token_endpoint = "https://idp.example.test/token"
`;

test('an unknown flag exits 64 with the error and a one-line hint, not the whole help page', async (t) => {
  const h = await home(t);
  const result = await popgate(h, ['fetch', '--evry', '5m']);
  assert.equal(result.code, 64, result.stderr);
  assert.match(result.stderr, /unknown option '--evry'/);
  assert.match(result.stderr, /\(add --help for the options\)/);
  assert.doesNotMatch(result.stderr, /^Options:/m);
});

test('flags that mean nothing together are refused with exit 64', async (t) => {
  const h = await home(t);
  const every = await popgate(h, ['fetch', '--every', '5m']);
  assert.equal(every.code, 64, every.stderr);
  assert.match(every.stderr, /--every sets the interval of --watch/);
  const both = await popgate(h, ['fetch', '--json', '--quiet']);
  assert.equal(both.code, 64, both.stderr);
  assert.match(both.stderr, /--json and --quiet cannot be combined/);
});

test('token status exits 77 when an account has no tokens, so a script can tell', async (t) => {
  const h = await home(t, ONE_ACCOUNT);
  const human = await popgate(h, ['token', 'status']);
  assert.equal(human.code, 77, human.stderr);
  assert.match(human.stdout, /account box: missing/);
  const json = await popgate(h, ['token', 'status', '--json']);
  assert.equal(json.code, 77, json.stderr);
  assert.equal(JSON.parse(json.stdout).accounts[0].health, 'missing');
});

test('with exactly one account configured, --account may be left out', async (t) => {
  const h = await home(t, ONE_ACCOUNT);
  const print = await popgate(h, ['token', 'print']);
  // The one account is used: the answer is about its missing tokens, not about a missing flag.
  assert.equal(print.code, 77, print.stderr);
  assert.match(print.stderr, /popgate login --account box/);
  const two = await home(t, `${ONE_ACCOUNT}\n${ONE_ACCOUNT.replace('[accounts.box]', '[accounts.other]')}`);
  const ambiguous = await popgate(two, ['token', 'print']);
  assert.equal(ambiguous.code, 78, ambiguous.stderr);
  assert.match(ambiguous.stderr, /name the account with --account NAME \(configured: box, other\)/);
});

test('token print to a terminal is a usage error (64), not a configuration error', async (t) => {
  const script = requirePeer(t, 'script');
  if (!script) return;
  const h = await home(t, ONE_ACCOUNT);
  // script(1) gives the child a pseudo-terminal as stdout; -e passes its exit code through.
  const line = [process.execPath, BIN, 'token', 'print'].map((a) => `'${a}'`).join(' ');
  const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(script, ['-qefc', line, '/dev/null'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(result.code, 64, result.out);
  assert.match(result.out, /refusing to print an access token to a terminal.*ERR_CONFIG_USAGE/s);
});

test('serve names both TLS files when neither can be read', async (t) => {
  const h = await home(t);
  const result = await popgate(h, [
    'serve',
    '--listen',
    'pop3s://127.0.0.1:0',
    '--tls-cert',
    join(h.dir, 'missing-cert.pem'),
    '--tls-key',
    join(h.dir, 'missing-key.pem'),
    '--issuer',
    'https://idp.example.test',
    '--audience',
    'pop3',
    '--jwks',
    join(h.dir, 'jwks.json'),
    '--store',
    `maildir:${join(h.dir, 'mail')}`,
  ]);
  assert.equal(result.code, 78, result.stderr);
  assert.match(
    result.stderr,
    /missing-cert\.pem \(ENOENT\) nor the TLS key file .*missing-key\.pem \(ENOENT\)/,
  );
});

const dovecot = sharedDovecot({ users: ['watch@example.test'] });

test('Ctrl-C while --watch waits for the next round says it stops, not that it finishes a message', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const e = await prepare(t, d, 'watch@example.test', d.popsPort);
  const args = e.args.filter((a) => a !== '--json' && a !== '--delete');
  const child = spawn(process.execPath, [BIN, ...args, '--watch', '--every', '10m'], {
    env: e.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const waiting = new Promise<void>((resolve) => {
    const take = (c: Buffer) => {
      err += c.toString();
      if (/next fetch in \d+ s/.test(err)) resolve();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', () => resolve()); // an early exit fails the assertions below instead of hanging
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  await waiting;
  child.kill('SIGINT');
  const code = await exit;
  assert.match(err, /SIGINT: stopping \(no fetch was running\)/);
  assert.doesNotMatch(err, /finishing the message in flight/);
  assert.equal(code, 0, err);
});
