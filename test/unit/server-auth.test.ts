import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createTokenValidator } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';
import { AUDIT_CHANNEL, type AuditEvent, createAuditSink } from '../../src/observability/audit.ts';
import type { Logger } from '../../src/observability/logger.ts';
import { DEFAULT_LIMITS, LoginThrottle } from '../../src/server/limits.ts';
import { oauthbearer, startTestServer, xoauth2 } from './server-helpers.ts';

const decode = (line: string) => JSON.parse(Buffer.from(line.slice(2), 'base64').toString('utf8'));

describe('AUTH', () => {
  it('AUTH without argument lists the mechanisms (old style)', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    const [status, lines] = await c.multi('AUTH');
    assert.match(status, /^\+OK/);
    assert.deepEqual(lines, ['OAUTHBEARER', 'XOAUTH2']);
  });

  it('logs in with XOAUTH2 and an initial response', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`),
      /^\+OK Logged in/,
    );
    assert.match(await c.command('STAT'), /^\+OK 2 /);
  });

  it('logs in with OAUTHBEARER in two steps (empty challenge, then the response)', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.command('AUTH OAUTHBEARER'), '+ ');
    assert.match(await c.command(oauthbearer('alice@example.test', 'tok-alice')), /^\+OK Logged in/);
  });

  it('logs in with OAUTHBEARER without a=, taking the user from the token', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.match(
      await c.command(`AUTH oauthbearer ${oauthbearer(undefined, 'tok-alice')}`),
      /^\+OK Logged in/,
    );
  });

  it('accepts a SASL response far longer than the command-line limit', async (t) => {
    const long = `tok-${'x'.repeat(20_000)}`;
    const s = await startTestServer();
    s.validator.tokens.set(long, { user: 'alice@example.test' });
    t.after(() => s.close());
    const two = await s.client();
    assert.equal(await two.command('AUTH XOAUTH2'), '+ ');
    assert.match(await two.command(xoauth2('alice@example.test', long)), /^\+OK/);
    await two.command('QUIT');
    const ir = await s.client();
    assert.match(await ir.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', long)}`), /^\+OK/);
  });

  it('closes the connection on a SASL response over the cap', async (t) => {
    const s = await startTestServer({ limits: { maxSaslResponse: 2048 } });
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.command('AUTH XOAUTH2'), '+ ');
    c.write(`${'A'.repeat(8192)}\r\n`);
    await c.waitClosed();
  });

  it('"*" cancels the exchange without counting a failure', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    for (let i = 0; i < 5; i++) {
      assert.equal(await c.command('AUTH XOAUTH2'), '+ ');
      assert.equal(await c.command('*'), '-ERR Authentication cancelled.');
    }
    assert.match(await c.command('CAPA'), /^\+OK/);
  });

  it('"=" is an empty initial response, which is malformed for these mechanisms', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.command('AUTH OAUTHBEARER ='), '-ERR [AUTH] Invalid SASL response.');
  });

  it('refuses an unknown mechanism', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.command('AUTH PLAIN AGFsaWNlAHg='), '-ERR Unsupported authentication mechanism.');
  });

  it('OAUTHBEARER refusal: RFC 7628 JSON challenge, wait for %x01, then -ERR [AUTH]', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    const challenge = await c.command(`AUTH OAUTHBEARER ${oauthbearer('alice@example.test', 'forged')}`);
    assert.match(challenge, /^\+ [A-Za-z0-9+/=]+$/);
    assert.deepEqual(decode(challenge), {
      status: 'invalid_token',
      scope: 'pop3',
      'openid-configuration': 'https://issuer.test/.well-known/openid-configuration',
    });
    assert.match(
      await c.command('AQ=='),
      /^-ERR \[AUTH\] Authentication failed: the access token is invalid/,
    );
  });

  it("XOAUTH2 refusal: Google's JSON challenge, wait for the empty line, then -ERR [AUTH]", async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    const challenge = await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'forged')}`);
    assert.deepEqual(decode(challenge), { status: '401', schemes: 'bearer', scope: 'pop3' });
    assert.match(await c.command(''), /^-ERR \[AUTH\] /);
  });

  it('a token without the read right is refused with insufficient_scope', async (t) => {
    const s = await startTestServer();
    s.validator.tokens.set('tok-noread', { user: 'alice@example.test', scopes: ['other'] });
    t.after(() => s.close());
    const c = await s.client();
    const challenge = await c.command(`AUTH OAUTHBEARER ${oauthbearer('alice@example.test', 'tok-noread')}`);
    assert.equal(decode(challenge).status, 'insufficient_scope');
    assert.match(await c.command('AQ=='), /^-ERR \[AUTH\] .*lacks the scope/);
  });

  it('a SASL user that does not match the token is refused', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    await c.command(`AUTH XOAUTH2 ${xoauth2('mallory@example.test', 'tok-alice')}`);
    assert.match(await c.command(''), /^-ERR \[AUTH\] .*does not match/);
  });

  it('an identity-provider outage answers -ERR [SYS/TEMP] and is not counted as a failure', async (t) => {
    const s = await startTestServer();
    s.validator.tokens.set('tok-down', {
      user: 'alice@example.test',
      error: new TokenValidationError('ERR_AUTH_UNAVAILABLE', 'JWKS unreachable'),
    });
    t.after(() => s.close());
    const c = await s.client();
    for (let i = 0; i < 5; i++) {
      assert.equal(
        await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-down')}`),
        '-ERR [SYS/TEMP] Temporary authentication failure; try again later.',
      );
    }
    assert.match(await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`), /^\+OK/);
  });

  it('a validator that throws something unexpected answers [SYS/TEMP], never +OK', async (t) => {
    const s = await startTestServer();
    s.validator.tokens.set('tok-bug', { user: 'alice@example.test', error: new TypeError('bug') });
    t.after(() => s.close());
    const c = await s.client();
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-bug')}`),
      /^-ERR \[SYS\/TEMP\]/,
    );
  });

  it('closes the session after the configured number of failed logins', async (t) => {
    const s = await startTestServer({ limits: { maxFailedLoginsPerSession: 2 } });
    t.after(() => s.close());
    const c = await s.client();
    await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'bad1')}`);
    assert.match(await c.command(''), /^-ERR \[AUTH\]/);
    await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'bad2')}`);
    assert.match(await c.command(''), /^-ERR \[AUTH\]/);
    await c.waitClosed();
  });

  it('DELE without the delete scope is refused with a clear [AUTH] text', async (t) => {
    const s = await startTestServer({}, (store) => store.add('bob@example.test', 'Subject: b\r\n\r\nx\r\n'));
    t.after(() => s.close());
    const c = await s.login('bob@example.test');
    assert.match(await c.command('DELE 1'), /^-ERR \[AUTH\] .*delete scope/);
    assert.match(await c.command('RETR 1'), /^\+OK/);
  });

  it('AUTH is not valid once logged in', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.match(await c.command('AUTH XOAUTH2'), /^-ERR .*TRANSACTION/);
  });

  it('LOGIN-DELAY is advertised and enforced when configured', async (t) => {
    const s = await startTestServer({ loginDelaySeconds: 60 });
    t.after(() => s.close());
    const c = await s.client();
    const [, caps] = await c.multi('CAPA');
    assert.ok(caps.includes('LOGIN-DELAY 60'));
    const first = await s.login();
    await first.command('QUIT');
    const again = await s.client();
    assert.match(
      await again.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`),
      /^-ERR \[LOGIN-DELAY\]/,
    );
  });

  it('USER and PASS do not exist without a password backend', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.command('USER alice'), '-ERR Unknown command.');
    assert.equal(await c.command('PASS secret'), '-ERR Unknown command.');
  });

  it('USER and PASS work when an operator enables a password backend', async (t) => {
    const s = await startTestServer({
      passwordBackend: {
        verify: async (user, password) => user === 'alice@example.test' && password === 'pass word',
      },
    });
    t.after(() => s.close());
    const c = await s.client();
    const [, caps] = await c.multi('CAPA');
    assert.ok(caps.includes('USER'));
    assert.match(await c.command('USER alice@example.test'), /^\+OK/);
    assert.match(await c.command('PASS wrong'), /^-ERR \[AUTH\]/);
    assert.match(await c.command('USER alice@example.test'), /^\+OK/);
    assert.match(await c.command('PASS pass word'), /^\+OK Logged in/);
  });

  it('audit events carry user, issuer, client and reason but never the token', async (t) => {
    const lines: string[] = [];
    const record = (fields: Record<string, unknown>, message?: string) =>
      lines.push(JSON.stringify({ ...fields, message }));
    const logger: Logger = { debug: record, info: record, warn: record, error: record };
    const events: AuditEvent[] = [];
    let onLogout!: () => void;
    const loggedOut = new Promise<void>((resolve) => {
      onLogout = resolve;
    });
    const onEvent = (e: unknown) => {
      events.push(e as AuditEvent);
      if ((e as AuditEvent).event === 'logout') onLogout();
    };
    subscribe(AUDIT_CHANNEL, onEvent);
    t.after(() => unsubscribe(AUDIT_CHANNEL, onEvent));
    const secret = 'tok-alice';
    const s = await startTestServer({ audit: createAuditSink(logger), logger });
    t.after(() => s.close());
    const c = await s.client();
    await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'forged-secret-token')}`);
    await c.command('');
    await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', secret)}`);
    await c.command('RETR 1');
    await c.body();
    await c.command('QUIT');
    await c.waitClosed();
    await loggedOut;
    const all = lines.join('\n');
    assert.ok(!all.includes('forged-secret-token') && !all.includes(secret));
    assert.ok(!all.includes(xoauth2('alice@example.test', secret)));
    const fail = events.find((e) => e.event === 'login.fail');
    assert.equal(fail?.event === 'login.fail' && fail.reason, 'ERR_AUTH_INVALID_TOKEN');
    const ok = events.find((e) => e.event === 'login.ok');
    assert.ok(
      ok?.event === 'login.ok' && ok.clientId === 'client-1' && ok.subject === 'sub-alice@example.test',
    );
    const out = events.find((e) => e.event === 'logout');
    assert.ok(out?.event === 'logout' && out.retr === 1 && out.how === 'quit' && out.bytesOut > 0);
  });
});

/** src/auth's real validator over a JWKS file, and a signer for its issuer's tokens. */
async function realValidator(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-server-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const issuer = 'https://issuer.example.test';
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
  const validator = createTokenValidator({ issuers: [{ issuer, audience: 'pop3', jwksFile }] });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ scope: 'pop3 pop3.delete', client_id: 'c1', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience('pop3')
      .setSubject('sub-1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(pair.privateKey);
  return { validator, sign };
}

describe('AUTH with the real token validator (src/auth)', () => {
  it('a mixed-case SASL user matching the email claim logs in to the lower-case maildrop', async (t) => {
    const { validator, sign } = await realValidator(t);
    const s = await startTestServer({ validator });
    t.after(() => s.close());
    const token = await sign({ email: 'alice@example.test' });
    const x = await s.client();
    assert.match(
      await x.command(`AUTH XOAUTH2 ${xoauth2('Alice@Example.test', token)}`),
      /^\+OK Logged in, 2 /,
    );
    assert.match(await x.command('STAT'), /^\+OK 2 /);
    await x.command('QUIT');
    const o = await s.client();
    assert.match(
      await o.command(`AUTH OAUTHBEARER ${oauthbearer('ALICE@EXAMPLE.TEST', token)}`),
      /^\+OK Logged in, 2 /,
    );
  });

  it('an email claim in mixed case names the same lower-case maildrop', async (t) => {
    const { validator, sign } = await realValidator(t);
    const s = await startTestServer({ validator });
    t.after(() => s.close());
    const c = await s.client();
    const token = await sign({ email: 'Alice@EXAMPLE.test' });
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', token)}`),
      /^\+OK Logged in, 2 /,
    );
  });

  it('still refuses a SASL user that is another user, whatever its case', async (t) => {
    const { validator, sign } = await realValidator(t);
    const s = await startTestServer({ validator });
    t.after(() => s.close());
    const c = await s.client();
    const token = await sign({ email: 'alice@example.test' });
    await c.command(`AUTH XOAUTH2 ${xoauth2('Mallory@Example.test', token)}`);
    assert.match(await c.command(''), /^-ERR \[AUTH\] .*does not match/);
    assert.equal(s.store.locked.size, 0, 'no maildrop was opened');
  });

  it('still refuses a token without the read scope (insufficient_scope)', async (t) => {
    const { validator, sign } = await realValidator(t);
    const s = await startTestServer({ validator });
    t.after(() => s.close());
    const c = await s.client();
    const token = await sign({ email: 'alice@example.test', scope: 'profile' });
    const challenge = await c.command(`AUTH OAUTHBEARER ${oauthbearer('Alice@example.test', token)}`);
    assert.equal(decode(challenge).status, 'insufficient_scope');
    assert.match(await c.command('AQ=='), /^-ERR \[AUTH\] .*lacks the scope/);
    assert.equal(s.store.locked.size, 0, 'no maildrop was opened');
  });
});

describe('LoginThrottle', () => {
  it('grows the delay per address and user, capped, and forgets after the window', () => {
    let now = 0;
    const throttle = new LoginThrottle(
      {
        ...DEFAULT_LIMITS,
        failedLoginDelayMs: 100,
        maxFailedLoginDelayMs: 1000,
        failedLoginWindowMs: 10_000,
      },
      () => now,
    );
    assert.equal(throttle.delayMs('1.2.3.4', 'u'), 0);
    throttle.recordFailure('1.2.3.4', 'u');
    assert.equal(throttle.delayMs('1.2.3.4', 'u'), 100);
    throttle.recordFailure('1.2.3.4', 'u');
    assert.equal(throttle.delayMs('1.2.3.4', 'u'), 200);
    for (let i = 0; i < 10; i++) throttle.recordFailure('1.2.3.4', 'u');
    assert.equal(throttle.delayMs('1.2.3.4', 'u'), 1000);
    assert.equal(throttle.delayMs('5.6.7.8', 'u'), 1000, 'the user is throttled from any address');
    assert.equal(throttle.delayMs('5.6.7.8', 'v'), 0);
    now = 20_000;
    assert.equal(throttle.delayMs('1.2.3.4', 'u'), 0);
  });

  it('keeps a bounded number of records', () => {
    const throttle = new LoginThrottle(DEFAULT_LIMITS, Date.now, 10);
    for (let i = 0; i < 100; i++) throttle.recordFailure(`10.0.0.${i}`, undefined);
    assert.equal(throttle.failures('10.0.0.0', undefined), 0);
    assert.equal(throttle.failures('10.0.0.99', undefined), 1);
  });
});
