// `popgate login / token status / token print / logout` in-process through main(), against a
// real oidc-provider: device login approved through the provider, nothing secret on a terminal,
// invalid_grant -> exit 77 with the command to run, notify hook, revocation at logout, and the
// wrong passphrase error that deletes nothing.
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { main } from '../../src/cli/main.ts';
import { revokeToken } from '../../src/oauth/flows/revoke.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import {
  type AuthorizationServer,
  nativeAccount,
  startTestAuthorizationServer,
  tempDir,
} from '../helpers/oidc.ts';

let as: AuthorizationServer;
let home: Awaited<ReturnType<typeof tempDir>>;
const everything: string[] = [];
// Test passphrases are secrets like any other: in the ledger, and long enough to be scanned for.
const FIRST_PASSPHRASE = 'first passphrase of the oauth-cli test';
const SECOND_PASSPHRASE = 'second passphrase of the oauth-cli test';
recordTestSecret(FIRST_PASSPHRASE);
recordTestSecret(SECOND_PASSPHRASE);

function context(args: readonly string[], env: Record<string, string> = {}, tty = false) {
  const fullEnv = {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    PATH: process.env.PATH ?? '',
    ...env,
  };
  // Both streams go to the run's secret scan as they are written, except the stdout of
  // `token print` (the token, by design).
  const ctx = capturedCliContext(fullEnv, { log: 'oauth-cli', args });
  if (tty) ctx.stdout.isTTY = true;
  return { ctx, stdout: ctx.stdout, stderr: ctx.stderr };
}

async function run(
  args: string[],
  options: { env?: Record<string, string>; tty?: boolean; approveAs?: string } = {},
) {
  const { ctx, stdout, stderr } = context(args, options.env, options.tty);
  let approval: Promise<void> | undefined;
  if (options.approveAs) {
    stderr.onText = (text) => {
      const code = /enter the code: (\S+)/.exec(text)?.[1];
      if (code && !approval) approval = as.approveDevice(code, options.approveAs as string);
    };
  }
  const code = await main(args, ctx);
  await approval;
  everything.push(stdout.text, stderr.text);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 120 });
  home = await tempDir('popgate-cli-');
  const notifyFile = join(home.dir, 'notified');
  const config = [
    '[accounts.work]',
    'user = "alice@example.test"',
    'provider = "custom"',
    `issuer = "${as.issuer}"`,
    `client_id = "${as.clients.native.clientId}"`,
    'scopes = ["pop3", "offline_access"]',
    'flow = "device"',
    'allow_insecure_http = true',
    `notify_command = "sh -c 'echo \\"$0\\" >> ${notifyFile}'"`,
    '',
  ].join('\n');
  await import('node:fs/promises').then((fs) =>
    fs.mkdir(join(home.dir, 'config', 'popgate'), { recursive: true }),
  );
  await writeFile(join(home.dir, 'config', 'popgate', 'config.toml'), config);
});

after(async () => {
  await as.stop();
  await home.cleanup({ passphrases: [FIRST_PASSPHRASE, SECOND_PASSPHRASE] });
});

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [])) {
    const full = join(dir, name);
    if ((await stat(full)).isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

describe('popgate login, token, logout', () => {
  let printed = '';

  test('login runs the device flow, shows the code on stderr and stores the tokens encrypted', async () => {
    const result = await run(['login', '--account', 'work'], { approveAs: 'alice@example.test' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /enter the code/);
    assert.match(result.stderr, /Logged in account work/);
    assert.equal(result.stdout, '');
    assert.equal((await stat(join(home.dir, 'data', 'popgate', 'tokens', 'work.token'))).mode & 0o777, 0o600);
  });

  test('token status shows health, scopes and the key in use, never the token', async () => {
    const result = await run(['token', 'status', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout);
    assert.equal(status.store.kind, 'encrypted-file');
    assert.equal(status.store.keySource, 'key-file');
    assert.equal(status.accounts[0].account, 'work');
    assert.equal(status.accounts[0].health, 'ok');
    assert.equal(status.accounts[0].hasRefreshToken, true);
    assert.ok(!/eyJ/.test(result.stdout), 'no JWT in the status output');
    const human = await run(['token', 'status', '--account', 'work']);
    assert.match(human.stdout, /account work: ok/);
    assert.match(human.stdout, /key file/);
  });

  test('token print refuses a terminal (a usage error: 64)', async () => {
    const result = await run(['token', 'print', '--account', 'work'], { tty: true });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /refusing to print an access token to a terminal/);
    assert.equal(result.stdout, '');
  });

  test('token print writes the access token to a pipe, and no file holds it in plain text', async () => {
    const result = await run(['token', 'print', '--account', 'work']);
    assert.equal(result.code, 0, result.stderr);
    printed = result.stdout.trim();
    assert.match(printed, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const file of [
      ...(await filesUnder(join(home.dir, 'data'))),
      ...(await filesUnder(join(home.dir, 'state'))),
    ]) {
      assert.ok(!(await readFile(file, 'latin1')).includes(printed), `${file} holds the token`);
    }
  });

  test('a revoked grant gives exit 77, a message naming the account and the login command, and runs the notify command', async () => {
    const account = await nativeAccount(as, 'work');
    // Withdraw the grant at the provider (as a user removing the app would).
    const { EncryptedFileTokenStore } = await import('../../src/oauth/stores/encrypted-file.ts');
    const { KeyFileSource } = await import('../../src/oauth/stores/key-source.ts');
    const store = new EncryptedFileTokenStore({
      dir: join(home.dir, 'data', 'popgate', 'tokens'),
      keySource: new KeyFileSource(join(home.dir, 'data', 'popgate', 'token.key')),
    });
    const stored = await store.get('work');
    await revokeToken(account, stored?.refreshToken as string, 'refresh_token');
    const result = await run(['token', 'print', '--account', 'work', '--refresh']);
    assert.equal(result.code, 77);
    assert.match(result.stderr, /account work must log in again/);
    assert.match(result.stderr, /popgate login --account work/);
    assert.match(result.stderr, /ERR_OAUTH_REAUTH_REQUIRED/);
    assert.equal(result.stdout, '');
    assert.equal((await readFile(join(home.dir, 'notified'), 'utf8')).trim(), 'work');
    const status = JSON.parse((await run(['token', 'status', '--json'])).stdout);
    assert.equal(status.accounts[0].health, 'stale');
    assert.ok(await store.get('work'), 'stale tokens are kept');
  });

  test('logout after a new login revokes at the provider and deletes locally', async () => {
    assert.equal((await run(['login', '--account', 'work'], { approveAs: 'alice@example.test' })).code, 0);
    const { EncryptedFileTokenStore } = await import('../../src/oauth/stores/encrypted-file.ts');
    const { KeyFileSource } = await import('../../src/oauth/stores/key-source.ts');
    const store = new EncryptedFileTokenStore({
      dir: join(home.dir, 'data', 'popgate', 'tokens'),
      keySource: new KeyFileSource(join(home.dir, 'data', 'popgate', 'token.key')),
    });
    const refresh = (await store.get('work'))?.refreshToken as string;
    assert.ok(await as.provider.RefreshToken.find(refresh));
    const result = await run(['logout', '--account', 'work']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Revoked the refresh token/);
    assert.equal(await as.provider.RefreshToken.find(refresh), undefined);
    assert.equal(await store.get('work'), undefined);
    const missing = await run(['token', 'print', '--account', 'work']);
    assert.equal(missing.code, 77);
    assert.match(missing.stderr, /popgate login --account work/);
  });

  test('a wrong passphrase is a clear error and deletes nothing', async () => {
    const env = { POPGATE_PASSPHRASE: FIRST_PASSPHRASE };
    assert.equal(
      (await run(['login', '--account', 'work'], { env, approveAs: 'alice@example.test' })).code,
      0,
    );
    const file = join(home.dir, 'data', 'popgate', 'tokens', 'work.token');
    const before = await readFile(file, 'utf8');
    const status = await run(['token', 'status', '--json'], { env });
    assert.equal(JSON.parse(status.stdout).store.keySource, 'passphrase');
    const wrong = await run(['token', 'print', '--account', 'work'], {
      env: { POPGATE_PASSPHRASE: SECOND_PASSPHRASE },
    });
    assert.equal(wrong.code, 78);
    assert.match(wrong.stderr, /wrong passphrase/);
    assert.equal(await readFile(file, 'utf8'), before);
    assert.equal((await run(['token', 'print', '--account', 'work'], { env })).code, 0);
  });

  test('no output of any command contains a token', () => {
    assert.ok(printed.length > 0);
    // The only place a token may appear is the stdout of `token print` to a pipe.
    const others = everything.filter((text) => !/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/.test(text));
    for (const text of others)
      assert.ok(!/eyJ[\w-]{10,}\.[\w-]{10,}\./.test(text), `a token leaked: ${text.slice(0, 80)}`);
  });
});
