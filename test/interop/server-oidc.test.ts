// popgate's POP3 server with the real token validator against a real issuer (oidc-provider):
// JWT access tokens via resource indicators, opaque ones via introspection. Every token the
// issuer can mint honestly comes from it; alg none, HS256-with-the-public-key and a tampered
// signature are forged from its real tokens and published keys. The wire answer is checked.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTokenValidator } from '../../src/auth/index.ts';
import { createPop3Server, type Pop3Server } from '../../src/server/server.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import {
  type AuthorizationServer,
  deviceLogin,
  nativeAccount,
  startTestAuthorizationServer,
} from '../helpers/oidc.ts';
import { oauthbearer, WireClient, xoauth2 } from '../unit/server-helpers.ts';

const USER = 'alice@example.test';
const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

interface Fixture {
  as: AuthorizationServer;
  other: AuthorizationServer;
  dir: string;
  store: MaildirStore;
  servers: Pop3Server[];
}

const f = {} as Fixture;

async function serve(
  issuers: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Promise<number> {
  const validator = createTokenValidator({
    issuers,
    allowInsecureLoopback: true,
    jwksCooldownSeconds: 0,
    ...extra,
  });
  const server = createPop3Server({
    listen: ['pop3://127.0.0.1:0'],
    allowPlaintextLoopback: true,
    validator,
    store: f.store,
    limits: { failedLoginDelayMs: 0, maxFailedLoginsPerSession: 100 },
  });
  f.servers.push(server);
  const [address] = await server.listen();
  return address!.port;
}

async function jwtFor(as: AuthorizationServer, user = USER): Promise<string> {
  const account = await nativeAccount(as, `a${Math.random()}`, { resource: as.pop3Audience });
  return (await deviceLogin(as, account, user)).accessToken;
}

/** Resolves once the JWT's own `exp` has passed (the event itself, not a guessed delay). */
async function pastExpiry(jwt: string): Promise<void> {
  const { exp } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as {
    exp: number;
  };
  while (Date.now() < exp * 1000) await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 1));
}

/** AUTH XOAUTH2 then, on a challenge, the empty line; returns [first answer, final answer]. */
async function login(port: number, token: string, user = USER): Promise<[string, string, WireClient]> {
  const c = await WireClient.connect(port);
  await c.line();
  const first = await c.command(`AUTH XOAUTH2 ${xoauth2(user, token)}`);
  const final = first.startsWith('+ ') ? await c.command('') : first;
  return [first, final, c];
}

const challengeOf = (line: string) => JSON.parse(Buffer.from(line.slice(2), 'base64').toString('utf8'));

describe('popgate server with tokens from oidc-provider', () => {
  let port = 0;
  let jwt = '';

  before(async () => {
    f.as = await startTestAuthorizationServer();
    f.other = await startTestAuthorizationServer({ accessTokenTyp: 'JWT' });
    f.dir = await mkdtemp(join(tmpdir(), 'popgate-server-oidc-'));
    f.store = new MaildirStore(f.dir);
    f.servers = [];
    await f.store.deliver(USER, Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
    port = await serve([{ issuer: f.as.issuer, audience: f.as.pop3Audience }]);
    jwt = await jwtFor(f.as);
  });

  after(async () => {
    for (const s of f.servers) await s.close({ graceMs: 0 });
    await f.store.close();
    await f.as.stop();
    await f.other.stop();
    await rm(f.dir, { recursive: true, force: true });
  });

  it('accepts a valid JWT access token (XOAUTH2 and OAUTHBEARER)', async () => {
    const [, answer, c] = await login(port, jwt);
    assert.match(answer, /^\+OK Logged in, 1 messages/);
    assert.match(await c.command('QUIT'), /^\+OK/);
    const c2 = await WireClient.connect(port);
    await c2.line();
    assert.match(await c2.command(`AUTH OAUTHBEARER ${oauthbearer(USER, jwt)}`), /^\+OK/);
    await c2.command('QUIT');
  });

  it('refuses a token whose SASL user is someone else', async () => {
    const [first, answer] = await login(port, jwt, 'mallory@example.test');
    assert.equal(challengeOf(first).status, '401');
    assert.match(answer, /^-ERR \[AUTH\] .*does not match/);
  });

  it('refuses a tampered signature', async () => {
    const [h, p, s] = jwt.split('.');
    const flipped = `${s!.slice(0, 10)}${s![10] === 'A' ? 'B' : 'A'}${s!.slice(11)}`;
    const [, answer] = await login(port, `${h}.${p}.${flipped}`);
    assert.match(answer, /^-ERR \[AUTH\] /);
  });

  it('refuses alg none', async () => {
    const [, p] = jwt.split('.');
    const [, answer] = await login(port, `${b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${p}.`);
    assert.match(answer, /^-ERR \[AUTH\] /);
  });

  it('refuses HS256 signed with the published public key', async () => {
    const [, p] = jwt.split('.');
    const [key] = f.as.publicKeys();
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: key!.kid }));
    const sig = createHmac('sha256', key!.pem).update(`${header}.${p}`).digest('base64url');
    const [, answer] = await login(port, `${header}.${p}.${sig}`);
    assert.match(answer, /^-ERR \[AUTH\] /);
  });

  it('refuses a token for another audience', async () => {
    const otherPort = await serve([{ issuer: f.as.issuer, audience: 'pop3://elsewhere' }]);
    const [first, answer] = await login(otherPort, jwt);
    assert.equal(challengeOf(first).status, '401');
    assert.match(answer, /^-ERR \[AUTH\] .*another audience/);
  });

  it('refuses a token from an issuer the server does not trust', async () => {
    const [, answer] = await login(port, await jwtFor(f.other));
    assert.match(answer, /^-ERR \[AUTH\] .*issuer/);
  });

  it('refuses a JWT with typ JWT where at+jwt is required, accepts it when allowed', async () => {
    const token = await jwtFor(f.other);
    const strict = await serve([{ issuer: f.other.issuer, audience: f.other.pop3Audience }]);
    assert.match((await login(strict, token))[1], /^-ERR \[AUTH\] .*typ/);
    const lenient = await serve([
      { issuer: f.other.issuer, audience: f.other.pop3Audience, typ: ['at+jwt', 'jwt'] },
    ]);
    const [, ok, c] = await login(lenient, token);
    assert.match(ok, /^\+OK/);
    await c.command('QUIT');
  });

  it('refuses a token without the required scope, with insufficient_scope in the challenge', async () => {
    const scoped = await serve([
      { issuer: f.as.issuer, audience: f.as.pop3Audience, scopes: { read: 'mail.read' } },
    ]);
    const c = await WireClient.connect(scoped);
    await c.line();
    const first = await c.command(`AUTH OAUTHBEARER ${oauthbearer(USER, jwt)}`);
    assert.deepEqual(
      { status: challengeOf(first).status, scope: challengeOf(first).scope },
      { status: 'insufficient_scope', scope: 'mail.read' },
    );
    assert.match(await c.command('AQ=='), /^-ERR \[AUTH\] .*scope/);
  });

  it('maps scopes to rights: DELE is refused without the delete scope', async () => {
    const readOnly = await serve([
      { issuer: f.as.issuer, audience: f.as.pop3Audience, scopes: { read: 'pop3', delete: 'pop3.delete' } },
    ]);
    const [, ok, c] = await login(readOnly, jwt);
    assert.match(ok, /^\+OK/);
    assert.match(await c.command('DELE 1'), /^-ERR \[AUTH\] .*delete scope/);
    await c.command('QUIT');
  });

  it('accepts a token signed with a new key after rotation (JWKS refetch on unknown kid)', async () => {
    const [, before, c] = await login(port, jwt);
    assert.match(before, /^\+OK/);
    await c.command('QUIT');
    const kid = await f.as.rotateKeys();
    const fresh = await jwtFor(f.as);
    assert.equal(JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()).kid, kid);
    const [, after, c2] = await login(port, fresh);
    assert.match(after, /^\+OK/);
    await c2.command('QUIT');
  });

  it('accepts an opaque token through introspection', async () => {
    const introspecting = await serve([
      {
        issuer: f.as.issuer,
        audience: f.as.opaqueAudience,
        introspection: {
          clientId: f.as.clients.introspector.clientId,
          clientSecret: f.as.clients.introspector.clientSecret,
        },
      },
    ]);
    const account = await nativeAccount(f.as, 'opaque', { resource: f.as.opaqueAudience });
    const opaque = (await deviceLogin(f.as, account, USER)).accessToken;
    assert.ok(!opaque.includes('.'), 'an opaque token');
    const [, ok, c] = await login(introspecting, opaque);
    assert.match(ok, /^\+OK/);
    await c.command('QUIT');
    const [, forged] = await login(introspecting, `${opaque.slice(0, -2)}xx`);
    assert.match(forged, /^-ERR \[AUTH\] /);
  });

  it('refuses an expired token', async () => {
    const shortLived = await startTestAuthorizationServer({ accessTokenTtl: 1 });
    try {
      const expiring = await serve([{ issuer: shortLived.issuer, audience: shortLived.pop3Audience }], {
        clockToleranceSeconds: 0,
      });
      const token = await jwtFor(shortLived);
      await pastExpiry(token);
      const [, answer] = await login(expiring, token);
      assert.match(answer, /^-ERR \[AUTH\] .*expired/);
    } finally {
      await shortLived.stop();
    }
  });

  it('answers [SYS/TEMP] when the issuer cannot be reached, and no challenge', async () => {
    const gone = await startTestAuthorizationServer();
    const token = await jwtFor(gone);
    const unreachable = await serve([{ issuer: gone.issuer, audience: gone.pop3Audience }], {
      httpTimeoutMs: 1000,
    });
    await gone.stop();
    const [first] = await login(unreachable, token);
    assert.match(first, /^-ERR \[SYS\/TEMP\] /);
  });
});
