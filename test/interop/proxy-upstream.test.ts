// The proxy's upstream side with a real `popgate proxy` child: a scripted upstream that behaves
// like Exchange Online's POP (XOAUTH2 only, two-step only, bare `-ERR` on failure); and the token
// manager against a real issuer (oidc-provider) and a real Dovecot that validates its JWTs: the
// access token refreshed without the client noticing, 50 sessions at once making one refresh, a
// wrong password leaving the token store byte-identical, and a refresh token revoked at the
// issuer giving every client the re-login message while the notify hook runs once.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DevSigningKey } from '../../dev/jwt-keys.ts';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { main } from '../../src/cli/main.ts';
import { revokeToken } from '../../src/oauth/flows/revoke.ts';
import { EncryptedFileTokenStore } from '../../src/oauth/stores/encrypted-file.ts';
import { KeyFileSource } from '../../src/oauth/stores/key-source.ts';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { type FakePop3Server, maildropScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';
import { type AuthorizationServer, nativeAccount, startTestAuthorizationServer } from '../helpers/oidc.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';
import {
  addAppPassword,
  type ProxyHome,
  proxyHome,
  type RunningProxy,
  startProxy,
} from '../helpers/proxy.ts';
import { WireClient } from '../unit/server-helpers.ts';

/** USER/PASS through the proxy; returns the PASS answer and the open client. */
async function login(port: number, user: string, password: string): Promise<[string, WireClient]> {
  const c = await WireClient.connect(port);
  await c.line();
  await c.command(`USER ${user}`);
  return [await c.command(`PASS ${password}`), c];
}

describe('an upstream that behaves like Exchange Online POP', () => {
  const GOOD = `eyJ0eXAiOiJKV1QifQ.${'x'.repeat(40)}.sig`;
  const MESSAGES = [
    'Subject: one\r\n\r\nhello\r\n',
    'Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n',
  ];
  let certs: TestCerts;
  let fake: FakePop3Server;
  let home: ProxyHome;
  let proxy: RunningProxy;
  let password: string;

  before(async () => {
    recordTestSecret(GOOD);
    certs = await createTestCerts();
    fake = await startFakePop3Server({
      implicitTls: true,
      tls: { key: certs.server.keyPem, cert: certs.server.certPem },
      script: maildropScript({
        messages: MESSAGES,
        greeting: 'The Microsoft Exchange POP3 service is ready.',
        capa: ['TOP', 'UIDL', 'SASL XOAUTH2', 'USER'],
        async on(verb, args, s) {
          if (verb !== 'AUTH') return false;
          // Two-step only: an initial response on the AUTH line is a bare -ERR.
          if (args.length !== 1 || args[0]!.toUpperCase() !== 'XOAUTH2') {
            s.write('-ERR\r\n');
            return true;
          }
          s.write('+ \r\n');
          const response = Buffer.from(await s.readLine(), 'base64').toString('utf8');
          const token = /auth=Bearer ([^\x01]+)\x01/.exec(response)?.[1];
          if (token === GOOD && response.startsWith('user=shared@contoso.test\x01')) {
            s.write('+OK User successfully authenticated.\r\n');
          } else if (token === 'locked') {
            s.write('-ERR [IN-USE] Mailbox locked\r\n');
          } else {
            s.write('-ERR Authentication failure: unknown user name or bad password.\r\n');
          }
          return true;
        },
      }),
    });
    home = await proxyHome('');
    await writeFile(join(home.dir, 'ca.pem'), certs.caCertPem);
    await writeFile(join(home.dir, 'token'), GOOD, { mode: 0o600 });
    await writeFile(
      home.configFile,
      [
        '[proxy]',
        'listen = ["pop3://127.0.0.1:0"]',
        'self_signed = false',
        'failed_login_delay_ms = 50',
        '',
        // A shared mailbox: the delegate's token, the shared address as the SASL user.
        '[accounts.shared]',
        'provider = "microsoft"',
        'user = "shared@contoso.test"',
        'local_user = "helpdesk"',
        'host = "127.0.0.1"',
        `port = ${fake.port}`,
        `ca = "${join(home.dir, 'ca.pem')}"`,
        `token_file = "${join(home.dir, 'token')}"`,
        '',
      ].join('\n'),
    );
    password = (await addAppPassword(home, 'shared', 'ticket-system')).password;
    proxy = await startProxy(home);
  });

  after(async () => {
    await proxy?.stop();
    await fake?.close();
    await home?.cleanup({ except: ['token'] }); // the token_file fixture
    await certs?.cleanup();
  });

  it('logs in with XOAUTH2 two-step even for a short token, then relays LIST and RETR with dots intact', async () => {
    const [answer, c] = await login(proxy.pop3, 'helpdesk', password);
    assert.match(answer, /^\+OK popgate: logged in to account shared/);
    const auth = fake.received.filter((l) => /^tls:AUTH/i.test(l));
    assert.deepEqual(auth.at(-1), 'tls:AUTH XOAUTH2');
    const [, list] = await c.multi('LIST');
    assert.equal(list.length, 2);
    const [status, lines] = await c.multi('RETR 2');
    assert.match(status, /^\+OK/);
    assert.equal(`${lines.join('\r\n')}\r\n`, MESSAGES[1]);
    assert.match(await c.command('QUIT'), /^\+OK/);
    assert.ok(fake.received.includes('tls:QUIT'));
  });

  it('a bare -ERR to the token becomes -ERR [AUTH] saying what to check; the token file is untouched', async () => {
    await writeFile(join(home.dir, 'token'), 'refused-token', { mode: 0o600 });
    try {
      const [answer, c] = await login(proxy.pop3, 'helpdesk', password);
      c.close();
      assert.match(answer, /^-ERR \[AUTH\] popgate: the mail server refused the token of account shared/);
      assert.equal(await readFile(join(home.dir, 'token'), 'utf8'), 'refused-token');
    } finally {
      await writeFile(join(home.dir, 'token'), GOOD, { mode: 0o600 });
    }
  });

  it("the upstream's [IN-USE] reaches the client with its code", async () => {
    await writeFile(join(home.dir, 'token'), 'locked', { mode: 0o600 });
    try {
      const [answer, c] = await login(proxy.pop3, 'helpdesk', password);
      c.close();
      assert.match(answer, /^-ERR \[IN-USE\] /);
    } finally {
      await writeFile(join(home.dir, 'token'), GOOD, { mode: 0o600 });
    }
  });

  it('an unreachable upstream is -ERR [SYS/TEMP], not [AUTH]', async () => {
    const other = await proxyHome(
      [
        '[proxy]',
        'listen = ["pop3://127.0.0.1:0"]',
        'self_signed = false',
        '[accounts.gone]',
        'provider = "microsoft"',
        'user = "gone@contoso.test"',
        'host = "127.0.0.1"',
        'port = 1',
        `token_file = "${join(home.dir, 'token')}"`,
        '',
      ].join('\n'),
    );
    try {
      const pw = (await addAppPassword(other, 'gone', 'x')).password;
      const p = await startProxy(other);
      try {
        const [answer, c] = await login(p.pop3, 'gone@contoso.test', pw);
        c.close();
        assert.match(answer, /^-ERR \[SYS\/TEMP\] popgate: account gone cannot log in upstream right now/);
      } finally {
        await p.stop();
      }
    } finally {
      await other.cleanup({ except: ['token'] }); // the token_file fixture
    }
  });
});

describe('the token manager behind the proxy, with a real issuer and Dovecot', () => {
  const USER = 'alice@example.test';
  let as: AuthorizationServer;
  let d: DovecotInstance;
  let home: ProxyHome;
  let proxy: RunningProxy;
  let password: string;
  const notified = () => readFile(join(home.dir, 'notified'), 'utf8').catch(() => '');

  /** `popgate ARGS` in-process (login approves the device code as alice). */
  async function cli(
    args: string[],
    approve = false,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = home.env as Record<string, string>;
    // Both streams go to the run's secret scan as written (stdout unless it is a secret by design).
    const ctx = capturedCliContext(env, { log: 'proxy-upstream-cli', args });
    const { stdout, stderr } = ctx;
    let approval: Promise<void> | undefined;
    if (approve) {
      stderr.onText = (text) => {
        const code = /enter the code: (\S+)/.exec(text)?.[1];
        if (code && !approval) approval = as.approveDevice(code, USER);
      };
    }
    const code = await main(args, ctx);
    await approval;
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  const store = () =>
    new EncryptedFileTokenStore({
      dir: join(home.dir, 'data', 'popgate', 'tokens'),
      keySource: new KeyFileSource(join(home.dir, 'data', 'popgate', 'token.key')),
    });

  /** Waits (polling token status) until the stored access token is due for a refresh. */
  async function untilExpiring(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = JSON.parse((await cli(['token', 'status', '--json'])).stdout);
      if (status.accounts[0].health !== 'ok') return;
      if (Date.now() > deadline) throw new Error('the access token never came due');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function tokenFiles(): Promise<Record<string, string>> {
    const dir = join(home.dir, 'data', 'popgate', 'tokens');
    const out: Record<string, string> = {};
    for (const name of await readdir(dir)) out[name] = (await readFile(join(dir, name))).toString('base64');
    out['token.key'] = (await readFile(join(home.dir, 'data', 'popgate', 'token.key'))).toString('base64');
    return out;
  }

  before(async () => {
    if (!peerPath('dovecot')) return;
    // 10 s access tokens: due for refresh 5 s after they are issued (the manager's skew).
    as = await startTestAuthorizationServer({ accessTokenTtl: 10, accessTokenTyp: 'JWT' });
    d = await startDovecot({ users: [USER], issuer: as.issuer });
    for (const key of as.publicKeys()) {
      const verification = {
        kid: key.kid,
        alg: key.alg,
        verificationKey: key.pem,
      } as unknown as DevSigningKey;
      await d.addVerificationKey(verification);
      await d.addVerificationKey(verification, as.clients.native.clientId);
    }
    await writeFile(join(await d.maildirOf(USER), 'new', '1.popgate'), 'Subject: hi\n\nhello\n');
    home = await proxyHome('');
    await writeFile(join(home.dir, 'dovecot-ca.pem'), d.caCertPem);
    await writeFile(
      home.configFile,
      [
        '[proxy]',
        'listen = ["pop3://127.0.0.1:0"]',
        'self_signed = false',
        'failed_login_delay_ms = 50',
        'max_connections_per_account = 60',
        'max_connections_per_ip = 100',
        '',
        '[accounts.work]',
        `user = "${USER}"`,
        'local_user = "alice"',
        `issuer = "${as.issuer}"`,
        `client_id = "${as.clients.native.clientId}"`,
        'scopes = ["pop3", "offline_access"]',
        'flow = "device"',
        'allow_insecure_http = true',
        'host = "127.0.0.1"',
        `port = ${d.popsPort}`,
        `ca = "${join(home.dir, 'dovecot-ca.pem')}"`,
        'mechanism = "XOAUTH2"',
        `notify_command = "sh -c 'echo \\"$0\\" >> ${join(home.dir, 'notified')}'"`,
        '',
      ].join('\n'),
    );
    const loggedIn = await cli(['login', '--account', 'work'], true);
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    password = (await addAppPassword(home, 'work', 'scanner')).password;
    proxy = await startProxy(home);
  });

  after(async () => {
    await proxy?.stop();
    await home?.cleanup({ except: ['token'] }); // the token_file fixture
    await d?.stop();
    await as?.stop();
  });

  it('a wrong password is refused and leaves the token store byte-identical', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const before = await tokenFiles();
    for (let i = 0; i < 3; i++) {
      const [answer, c] = await login(proxy.pop3, 'alice', `not-it-${i}`);
      assert.match(answer, /^-ERR \[AUTH\] /);
      c.close();
    }
    assert.deepEqual(await tokenFiles(), before);
    assert.equal(as.grantCounts().refresh_token ?? 0, 0);
  });

  it('50 sessions starting at once when the token is due make one refresh, and all get their mail', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await untilExpiring();
    const refreshes = as.grantCounts().refresh_token ?? 0;
    const results = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const [answer, c] = await login(proxy.pop3, 'alice', password);
        const [, lines] = answer.startsWith('+OK') ? await c.multi('RETR 1') : ['', []];
        await c.command('QUIT').catch(() => '');
        c.close();
        return { answer, body: lines.join('\n') };
      }),
    );
    for (const r of results) {
      assert.match(r.answer, /^\+OK/);
      assert.equal(r.body, 'Subject: hi\n\nhello');
    }
    assert.equal((as.grantCounts().refresh_token ?? 0) - refreshes, 1);
  });

  it('a refresh token revoked at the issuer: every client gets the re-login message, the hook runs once', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await nativeAccount(as, 'work');
    await revokeToken(account, (await store().get('work'))!.refreshToken!, 'refresh_token');
    await untilExpiring();
    const first = await Promise.all(Array.from({ length: 5 }, () => login(proxy.pop3, 'alice', password)));
    const later = [await login(proxy.pop3, 'alice', password), await login(proxy.pop3, 'alice', password)];
    for (const [answer, c] of [...first, ...later]) {
      assert.equal(
        answer,
        '-ERR [AUTH] popgate: account work needs a new login: run popgate login --account work',
      );
      c.close();
    }
    assert.equal(await notified(), 'work\n');
    assert.ok((await store().get('work'))?.stale, 'the tokens are kept, marked stale');
    await proxy.waitForAudit((e) => e.event === 'proxy.login.fail' && e.reason === 'reauth-required');
  });
});
