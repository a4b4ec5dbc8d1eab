// Where `popgate fetch` (a real CLI child, against a real Dovecot) gets its token:
//  - `--token-command`: asked again with POPGATE_FORCE_REFRESH=1 after Dovecot's `[AUTH]`
//    refusal, then the retry succeeds; a helper that exits non-zero is a temporary failure (75)
//    that shows the helper's stderr. (The timeout is unit-tested: test/unit/fetch-token-source.)
//  - popgate's own token manager end to end: login (device flow at the real oidc-provider) ->
//    fetch -> Dovecot refuses the stored access token with [AUTH] -> one refresh -> retry -> mail
//    fetched; and with the grant revoked at the provider -> exit 77 naming `popgate login`.
// Dovecot trusts the authorization server's signing keys (local JWT validation, `typ: JWT`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { DevSigningKey } from '../../dev/jwt-keys.ts';
import { main } from '../../src/cli/main.ts';
import { openTokens } from '../../src/cli/tokens.ts';
import { revokeToken } from '../../src/oauth/flows/revoke.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { type AuthorizationServer, nativeAccount, startTestAuthorizationServer } from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';
import { appendTestLog, removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const ALICE = 'alice@example.test';
const HELPER_USER = 'helper@example.test';

let as: AuthorizationServer | undefined;
let shared: Promise<DovecotInstance> | undefined;
/** One Dovecot that trusts the test authorization server's keys (and its own minting key). */
function dovecot(): Promise<DovecotInstance> {
  shared ??= (async () => {
    as = await startTestAuthorizationServer({ accessTokenTtl: 3600, accessTokenTyp: 'JWT' });
    const d = await startDovecot({ users: [ALICE, HELPER_USER], issuer: as.issuer });
    for (const key of as.publicKeys())
      await d.addVerificationKey({ alg: key.alg, kid: key.kid, verificationKey: key.pem } as DevSigningKey);
    return d;
  })();
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
  await as?.stop();
});

async function home(t: {
  after(fn: () => Promise<void>): void;
}): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-fetch-tokens-'));
  // Popgate's files go to the run's secret scan first; `expired` and `good` are the token
  // helper's fixtures (plain text by design).
  t.after(() => removeTempTree(dir, { except: ['expired', 'good'] }));
  const env = {
    HOME: dir,
    PATH: process.env.PATH ?? '',
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_STATE_HOME: join(dir, 'state'),
    ...(process.env.POPGATE_RUN_DIST ? { POPGATE_RUN_DIST: process.env.POPGATE_RUN_DIST } : {}),
  };
  await mkdir(join(dir, 'config', 'popgate'), { recursive: true });
  return { dir, env };
}

function popgate(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  return new Promise((resolve) =>
    child.once('close', (code) => {
      appendTestLog('fetch-cli-tokens', stdout + stderr);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('--token-command', () => {
  async function setup(t: { after(fn: () => Promise<void>): void }, script: string) {
    const d = await dovecot();
    const h = await home(t);
    await writeUniformMessages(await d.maildirOf(HELPER_USER), 3, 800, {
      owner: { uid: d.mailUid, gid: d.mailGid },
    });
    await writeFile(join(h.dir, 'ca.pem'), d.caCertPem);
    await writeFile(join(h.dir, 'helper.sh'), script, { mode: 0o700 });
    const args = [
      'fetch',
      '--host',
      '127.0.0.1',
      '--port',
      String(d.popsPort),
      '--ca',
      join(h.dir, 'ca.pem'),
      '--user',
      HELPER_USER,
      '--token-command',
      join(h.dir, 'helper.sh'),
      '--to',
      join(h.dir, 'Maildir'),
    ];
    return { d, ...h, args };
  }

  test('after [AUTH] the command is run again with POPGATE_FORCE_REFRESH=1 and the retry succeeds', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const d = await dovecot();
    const h0 = await home(t);
    // An expired token (Dovecot answers [AUTH]) on a first ask, a good one on a forced refresh.
    await writeFile(join(h0.dir, 'expired'), await d.mintToken(HELPER_USER, { expiresIn: -120 }), {
      mode: 0o600,
    });
    await writeFile(join(h0.dir, 'good'), await d.mintToken(HELPER_USER, { expiresIn: 3600 }), {
      mode: 0o600,
    });
    const s = await setup(
      t,
      `#!/bin/sh\necho "$POPGATE_FORCE_REFRESH" >> ${h0.dir}/asked\nif [ "$POPGATE_FORCE_REFRESH" = 1 ]; then cat ${h0.dir}/good; else cat ${h0.dir}/expired; fi\n`,
    );
    const run = await popgate(s.args, s.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /fetched 3 messages/);
    assert.equal(
      await readFile(join(h0.dir, 'asked'), 'utf8'),
      '0\n1\n',
      'asked once, then once with a forced refresh',
    );
    assert.equal((await readdir(join(s.dir, 'Maildir', 'new'))).length, 3);
  });

  test('a helper that exits non-zero is a temporary failure (75) showing its stderr, and nothing is fetched', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const s = await setup(t, '#!/bin/sh\necho "helper: the keyring is locked" >&2\nexit 3\n');
    const run = await popgate(s.args, s.env);
    assert.equal(run.code, 75, run.stdout + run.stderr);
    assert.match(run.stderr, /token_command exited with status 3: helper: the keyring is locked/);
    assert.equal((await readdir(join(s.dir, 'Maildir', 'new')).catch((): string[] => [])).length, 0);
  });
});

function context(env: NodeJS.ProcessEnv, args: readonly string[]) {
  return capturedCliContext(env, { log: 'fetch-cli-tokens', args });
}

test('token manager end to end: login, fetch, [AUTH] on a refused token -> one refresh -> retry; revoked grant -> exit 77', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const server = as as AuthorizationServer;
  const h = await home(t);
  const source = await d.maildirOf(ALICE);
  await writeFile(join(h.dir, 'ca.pem'), d.caCertPem);
  await writeFile(
    join(h.dir, 'config', 'popgate', 'config.toml'),
    [
      '[accounts.work]',
      `user = "${ALICE}"`,
      'host = "127.0.0.1"',
      `port = ${d.popsPort}`,
      'ca = "~/ca.pem"',
      'to = "maildir:~/Maildir"',
      'provider = "custom"',
      `issuer = "${server.issuer}"`,
      `client_id = "${server.clients.native.clientId}"`,
      'scopes = ["pop3", "offline_access"]',
      'flow = "device"',
      'allow_insecure_http = true',
      '',
    ].join('\n'),
  );
  // Login in this process, approving the device code through the provider's pages.
  const loginCtx = context(h.env, ['login']);
  let approval: Promise<void> | undefined;
  loginCtx.stderr.onText = (text) => {
    const code = /enter the code: (\S+)/.exec(text)?.[1];
    if (code && !approval) approval = server.approveDevice(code, ALICE);
  };
  const loggedIn = await main(['login', '--account', 'work'], loginCtx);
  await approval;
  assert.equal(loggedIn, 0, loginCtx.stderr.text);

  const refreshes = () => server.grantCounts().refresh_token ?? 0;
  await writeUniformMessages(source, 2, 800, { owner: { uid: d.mailUid, gid: d.mailGid } });
  const first = await popgate(['fetch', '--account', 'work'], h.env);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  assert.match(first.stdout, /fetched 2 messages/);

  // The server refuses the stored access token (expired at Dovecot, still valid by popgate's
  // record), as after a key rotation or a server-side revocation: [AUTH], refresh once, retry.
  const { manager } = await openTokens(context(h.env, []));
  const refuseStoredToken = async () => {
    const stored = await manager.store.get('work');
    assert.ok(stored);
    await manager.store.set('work', {
      ...stored,
      accessToken: await d.mintToken(ALICE, { expiresIn: -120 }),
    });
  };
  await refuseStoredToken();
  await writeUniformMessages(source, 2, 800, { owner: { uid: d.mailUid, gid: d.mailGid }, firstIndex: 10 });
  const before = refreshes();
  const second = await popgate(['fetch', '--account', 'work'], h.env);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.match(second.stdout, /fetched 2 messages/);
  assert.equal(refreshes() - before, 1, 'one refresh at the authorization server');
  assert.equal((await readdir(join(h.dir, 'Maildir', 'new'))).length, 4);

  // The grant is withdrawn at the provider: the refresh gets invalid_grant -> exit 77.
  const stored = await manager.store.get('work');
  await revokeToken(await nativeAccount(server, 'work'), stored?.refreshToken as string, 'refresh_token');
  await refuseStoredToken();
  const third = await popgate(['fetch', '--account', 'work'], h.env);
  assert.equal(third.code, 77, third.stdout + third.stderr);
  assert.match(third.stderr, /account work must log in again/);
  assert.match(third.stderr, /popgate login --account work/);
});
