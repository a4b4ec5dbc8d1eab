// popgate's server trusting two real issuers at once (two instances of the dev authorization
// server, oidc-provider): an opaque token is introspected at exactly one of them (requests
// counted at each), the same login name from each opens its own maildrop, an email login needs
// email_verified, and a case-sensitive `sub` names its maildrop exactly (issue 11 items 4 and 5).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
import { WireClient, xoauth2 } from '../unit/server-helpers.ts';

const INTROSPECTION = '/token/introspection';

let dir: string;
let store: MaildirStore;
const servers: Pop3Server[] = [];
const issuers: AuthorizationServer[] = [];

async function authorizationServer(claims: (id: string) => Record<string, unknown>) {
  const as = await startTestAuthorizationServer({ accessTokenClaims: claims });
  issuers.push(as);
  return as;
}

async function serve(issuerOptions: Record<string, unknown>[]): Promise<number> {
  const server = createPop3Server({
    listen: ['pop3://127.0.0.1:0'],
    allowPlaintextLoopback: true,
    validator: createTokenValidator({ issuers: issuerOptions, allowInsecureLoopback: true }),
    store,
    limits: { failedLoginDelayMs: 0, maxFailedLoginsPerSession: 100 },
  });
  servers.push(server);
  const [address] = await server.listen();
  return address!.port;
}

/** A token for `account` from `as`: a JWT (pop3 resource) or an opaque one (introspected). */
async function tokenFor(as: AuthorizationServer, account: string, kind: 'jwt' | 'opaque'): Promise<string> {
  const resource = kind === 'jwt' ? as.pop3Audience : as.opaqueAudience;
  const client = await nativeAccount(as, `a${Math.random()}`, { resource });
  return (await deviceLogin(as, client, account)).accessToken;
}

/** AUTH XOAUTH2 as `user`; the final answer (after the empty reply to a challenge). */
async function login(port: number, user: string, token: string): Promise<string> {
  const c = await WireClient.connect(port);
  try {
    await c.line();
    const first = await c.command(`AUTH XOAUTH2 ${xoauth2(user, token)}`);
    const final = first.startsWith('+ ') ? await c.command('') : first;
    if (final.startsWith('+OK')) await c.command('QUIT');
    return final;
  } finally {
    c.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popgate-server-issuers-'));
  store = new MaildirStore(dir);
});

after(async () => {
  for (const s of servers) await s.close({ graceMs: 0 });
  await store.close();
  for (const as of issuers) await as.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('two issuers: an opaque token is introspected at exactly one', () => {
  let a: AuthorizationServer;
  let b: AuthorizationServer;
  let port = 0;
  const counts = () => [a.requestCount(INTROSPECTION), b.requestCount(INTROSPECTION)];

  before(async () => {
    const verified = (id: string) => ({ email: id, email_verified: true });
    a = await authorizationServer(verified);
    b = await authorizationServer(verified);
    const entry = (as: AuthorizationServer, domain: string) => ({
      issuer: as.issuer,
      audience: as.opaqueAudience,
      introspection: {
        clientId: as.clients.introspector.clientId,
        clientSecret: as.clients.introspector.clientSecret,
      },
      domains: domain,
    });
    port = await serve([entry(a, 'a.test'), entry(b, 'b.test')]);
  });

  it("B's token for a B user goes to B only; A's to A only", async () => {
    const carol = await tokenFor(b, 'carol@b.test', 'opaque');
    assert.match(await login(port, 'carol@b.test', carol), /^\+OK Logged in/);
    assert.deepEqual(counts(), [0, 1]);
    const alice = await tokenFor(a, 'alice@a.test', 'opaque');
    assert.match(await login(port, 'alice@a.test', alice), /^\+OK Logged in/);
    assert.deepEqual(counts(), [1, 1]);
  });

  it("B's token presented for an A user is asked at A only, which refuses it; B never sees it", async () => {
    const before = counts();
    const carol = await tokenFor(b, 'carol@b.test', 'opaque');
    assert.match(await login(port, 'alice@a.test', carol), /^-ERR \[AUTH\] /);
    assert.deepEqual(counts(), [before[0]! + 1, before[1]!]);
  });

  it('a login name without a domain is refused before any introspection request', async () => {
    const before = counts();
    const carol = await tokenFor(b, 'carol@b.test', 'opaque');
    assert.match(await login(port, 'carol', carol), /^-ERR \[AUTH\] /);
    assert.deepEqual(counts(), before);
  });
});

describe('two issuers asserting the same preferred_username', () => {
  it('get different maildrops: each login sees only its own mail', async () => {
    const username = (id: string) => ({ preferred_username: id });
    const a = await authorizationServer(username);
    const b = await authorizationServer(username);
    const entry = (as: AuthorizationServer, domain: string) => ({
      issuer: as.issuer,
      audience: as.pop3Audience,
      userClaim: 'preferred_username',
      domains: domain,
    });
    const port = await serve([entry(a, 'a.test'), entry(b, 'b.test')]);
    await store.deliver('alice@a.test', Buffer.from('Subject: for A\r\n\r\nA\r\n'));
    for (const n of [1, 2]) await store.deliver('alice@b.test', Buffer.from(`Subject: B${n}\r\n\r\nB\r\n`));
    const fromA = await tokenFor(a, 'alice', 'jwt');
    const fromB = await tokenFor(b, 'alice', 'jwt');
    assert.match(await login(port, 'alice', fromA), /^\+OK Logged in, 1 messages/);
    assert.match(await login(port, 'alice@b.test', fromB), /^\+OK Logged in, 2 messages/);
    // A's alice is not B's alice.
    assert.match(await login(port, 'alice@b.test', fromA), /^-ERR \[AUTH\] /);
  });
});

describe('email_verified', () => {
  it('an email login with email_verified false is refused, unless emailVerified is ignore', async () => {
    const as = await authorizationServer((id) => ({ email: id, email_verified: false }));
    const token = await tokenFor(as, 'mallory@example.test', 'jwt');
    const strict = await serve([{ issuer: as.issuer, audience: as.pop3Audience }]);
    assert.match(await login(strict, 'mallory@example.test', token), /^-ERR \[AUTH\] /);
    const lax = await serve([{ issuer: as.issuer, audience: as.pop3Audience, emailVerified: 'ignore' }]);
    assert.match(await login(lax, 'mallory@example.test', token), /^\+OK Logged in/);
  });
});

describe('sub keeps its case end to end', () => {
  it('a mixed-case subject opens the maildrop of that exact name, not a lower-case twin', async () => {
    const as = await authorizationServer(() => ({}));
    const port = await serve([{ issuer: as.issuer, audience: as.pop3Audience, userClaim: 'sub' }]);
    await store.deliver('AbC-Sub', Buffer.from('Subject: mine\r\n\r\nmine\r\n'));
    await store.deliver('abc-sub', Buffer.from('Subject: twin 1\r\n\r\nnot mine\r\n'));
    await store.deliver('abc-sub', Buffer.from('Subject: twin 2\r\n\r\nnot mine\r\n'));
    assert.ok((await readdir(dir)).includes('AbC-Sub'));
    const token = await tokenFor(as, 'AbC-Sub', 'jwt');
    assert.match(await login(port, 'AbC-Sub', token), /^\+OK Logged in, 1 messages/);
    assert.match(await login(port, 'abc-sub', token), /^-ERR \[AUTH\] /);
  });
});

describe('popgate serve with an ambiguous configuration', () => {
  it('refuses to start with two issuers that do not say which domains they own: exit 78, saying why', async () => {
    const file = join(dir, 'ambiguous.toml');
    await writeFile(
      file,
      [
        '[server]',
        'listen = ["pop3://127.0.0.1:0"]',
        'allow_plaintext_loopback = true',
        `store = ${JSON.stringify(`maildir:${join(dir, 'ambiguous')}`)}`,
        '[[server.issuers]]',
        'issuer = "https://a.example"',
        'audience = "pop3"',
        '[[server.issuers]]',
        'issuer = "https://b.example"',
        'audience = "pop3"',
        '',
      ].join('\n'),
    );
    const bin = new URL('../../bin/popgate.js', import.meta.url).pathname;
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [bin, 'serve', '--config', file], (error, _stdout, err) => {
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stderr: err });
      });
    });
    assert.equal(code, 78, stderr);
    assert.match(
      stderr,
      /issuers\[0\]\.domains is required with several issuers: list the mail domains https:\/\/a\.example may name, so the same login name from two issuers cannot share a maildrop/,
    );
  });
});
