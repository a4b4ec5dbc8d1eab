// Several issuers side by side (issue 11 items 5 and 6): each issuer's login names map to its own
// maildrops (domains), an email login needs email_verified as configured, `sub` keeps its case,
// an ambiguous configuration is refused naming why, a JWKS body is cut at the 1 MiB cap, and a
// CA file is checked when configured. Tokens are minted with jose over JWKS files (no network),
// except for the JWKS cap, which needs a JWKS endpoint that streams.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { IssuerHttp } from '../../src/auth/http.ts';
import { createTokenValidator, type IssuerOptions, resolveValidatorOptions } from '../../src/auth/index.ts';
import { ConfigError, TokenValidationError } from '../../src/errors.ts';
import { createPop3Server } from '../../src/server/server.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { WireClient, xoauth2 } from './server-helpers.ts';

const A = 'https://a.example';
const B = 'https://b.example';
let dir: string;
let jwksFile: string;
let privateKey: CryptoKey;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popgate-auth-issuers-'));
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A JWT access token of `iss`, recorded for the end-of-run secret scan. */
async function sign(iss: string, claims: JWTPayload): Promise<string> {
  const token = await new SignJWT({ scope: 'pop3', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(iss)
    .setAudience('pop3')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
  recordTestSecret(token);
  return token;
}

const issuer = (iss: string, extra: Partial<IssuerOptions> = {}): IssuerOptions => ({
  issuer: iss,
  audience: 'pop3',
  jwksFile,
  ...extra,
});

function configError(options: unknown): ConfigError {
  try {
    resolveValidatorOptions(options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

async function refusal(promise: Promise<unknown>): Promise<TokenValidationError> {
  const error = await promise.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof TokenValidationError, `not a TokenValidationError: ${String(error)}`);
  return error;
}

describe('an ambiguous configuration is refused, saying why', () => {
  test('several issuers without domains', () => {
    const error = configError({ issuers: [issuer(A), issuer(B, { domains: 'b.test' })] });
    assert.equal(error.code, 'ERR_CONFIG_MISSING');
    assert.equal(error.key, 'issuers[0].domains');
    assert.match(error.message, /several issuers.*https:\/\/a\.example.*cannot share a maildrop/);
  });

  test('one domain listed by two issuers', () => {
    const error = configError({
      issuers: [issuer(A, { domains: ['a.test', 'Shared.test'] }), issuer(B, { domains: '@shared.TEST' })],
    });
    assert.equal(error.code, 'ERR_CONFIG_INVALID');
    assert.equal(error.key, 'issuers[1].domains');
    assert.match(error.message, /shared\.test.*issuers\[0\] \(https:\/\/a\.example\)/);
  });

  test('overlapping token prefixes, or prefixes on an issuer that does not introspect', () => {
    const introspection = { clientId: 'c', clientSecret: 's' };
    const error = configError({
      issuers: [
        issuer(A, { domains: 'a.test', introspection, tokenPrefixes: 'tok_' }),
        issuer(B, { domains: 'b.test', introspection, tokenPrefixes: ['x', 'tok_b'] }),
      ],
    });
    assert.equal(error.key, 'issuers[1].tokenPrefixes');
    assert.match(error.message, /"tok_b" overlaps "tok_"/);
    assert.equal(
      configError({ issuers: [issuer(A, { tokenPrefixes: 'x' })] }).key,
      'issuers[0].tokenPrefixes',
    );
  });

  test('a malformed domain or email_verified rule', () => {
    assert.equal(configError({ issuers: [issuer(A, { domains: 'a b' })] }).key, 'issuers[0].domains[0]');
    assert.equal(configError({ issuers: [issuer(A, { domains: 'x@y' })] }).key, 'issuers[0].domains[0]');
    const rule = configError({ issuers: [issuer(A, { emailVerified: 'yes' as never })] });
    assert.equal(rule.key, 'issuers[0].emailVerified');
  });

  test('a single issuer needs none of it; email_verified defaults to if-present, with several to required', () => {
    const single = resolveValidatorOptions({ issuers: [issuer(A)] }).issuers[0]!;
    assert.deepEqual([single.domains, single.emailVerified], [[], 'if-present']);
    const several = resolveValidatorOptions({
      issuers: [issuer(A, { domains: 'a.test' }), issuer(B, { domains: 'b.test' })],
    });
    assert.deepEqual(
      several.issuers.map((i) => i.emailVerified),
      ['required', 'required'],
    );
  });
});

describe('maildrops are scoped by issuer', () => {
  const two = (a: Partial<IssuerOptions> = {}, b: Partial<IssuerOptions> = {}) =>
    createTokenValidator({
      issuers: [
        issuer(A, { userClaim: 'preferred_username', domains: 'a.test', ...a }),
        issuer(B, { userClaim: 'preferred_username', domains: ['b.test', 'b2.test'], ...b }),
      ],
    });

  test('the same preferred_username from two issuers names two maildrops', async () => {
    const v = two();
    const fromA = await v.validate(await sign(A, { preferred_username: 'Alice' }), { user: 'alice' });
    const fromB = await v.validate(await sign(B, { preferred_username: 'alice' }), { user: undefined });
    assert.equal(fromA.user, 'alice@a.test');
    assert.equal(fromB.user, 'alice@b.test');
  });

  test('the SASL user may be the claim or the maildrop name, in any case', async () => {
    const v = two();
    const token = await sign(A, { preferred_username: 'alice' });
    for (const user of ['alice', 'ALICE', 'alice@a.test', 'Alice@A.TEST']) {
      assert.equal((await v.validate(token, { user })).user, 'alice@a.test', user);
    }
    const error = await refusal(v.validate(token, { user: 'alice@b.test' }));
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
  });

  test("an issuer cannot name a maildrop in another issuer's domain", async () => {
    const v = two({ userClaim: 'email', emailVerified: 'ignore' });
    const own = await v.validate(await sign(A, { email: 'Bob@A.test' }), { user: undefined });
    assert.equal(own.user, 'bob@a.test');
    const error = await refusal(v.validate(await sign(A, { email: 'bob@b.test' }), { user: 'bob@b.test' }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /domain issuer https:\/\/a\.example may not name/);
  });

  test('a single issuer keeps the plain layout: the claim is the maildrop name', async () => {
    const v = createTokenValidator({ issuers: [issuer(A, { userClaim: 'preferred_username' })] });
    assert.equal(
      (await v.validate(await sign(A, { preferred_username: 'Alice' }), { user: 'alice' })).user,
      'alice',
    );
  });
});

describe('email_verified', () => {
  const one = (extra: Partial<IssuerOptions> = {}) => createTokenValidator({ issuers: [issuer(A, extra)] });

  test('email_verified false is refused by default, accepted only with emailVerified ignore', async () => {
    const token = await sign(A, { email: 'eve@a.test', email_verified: false });
    const error = await refusal(one().validate(token, { user: 'eve@a.test' }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /unverified/);
    assert.equal(
      (await one({ emailVerified: 'ignore' }).validate(token, { user: undefined })).user,
      'eve@a.test',
    );
  });

  test('a missing email_verified is refused under required (the default with several issuers)', async () => {
    const token = await sign(A, { email: 'eve@a.test' });
    assert.equal((await one().validate(token, { user: undefined })).user, 'eve@a.test');
    const error = await refusal(one({ emailVerified: 'required' }).validate(token, { user: undefined }));
    assert.match(error.message, /does not say its email is verified/);
    const several = createTokenValidator({
      issuers: [issuer(A, { domains: 'a.test' }), issuer(B, { domains: 'b.test' })],
    });
    assert.equal(
      (await refusal(several.validate(token, { user: undefined }))).code,
      'ERR_AUTH_INVALID_TOKEN',
    );
    const verified = await sign(A, { email: 'eve@a.test', email_verified: true });
    assert.equal((await several.validate(verified, { user: undefined })).user, 'eve@a.test');
  });
});

test('sub keeps its case: the maildrop name is the exact subject, another case is another user', async () => {
  const v = createTokenValidator({ issuers: [issuer(A, { userClaim: 'sub' })] });
  const token = await sign(A, { sub: 'AbC-123' });
  assert.equal((await v.validate(token, { user: 'AbC-123' })).user, 'AbC-123');
  assert.equal((await refusal(v.validate(token, { user: 'abc-123' }))).code, 'ERR_AUTH_USER_MISMATCH');
  const scoped = createTokenValidator({
    issuers: [issuer(A, { userClaim: 'sub', domains: 'a.test' }), issuer(B, { domains: 'b.test' })],
  });
  assert.equal((await scoped.validate(token, { user: 'AbC-123@A.test' })).user, 'AbC-123@a.test');
});

describe('the issuer CA option is checked when configured', () => {
  test('a CA that is not PEM certificates fails naming the option and what is wrong', async (t) => {
    const certs = await createTestCerts(t);
    const ok = resolveValidatorOptions({ issuers: [issuer(A, { ca: certs.caCertPem })] });
    assert.equal(ok.issuers[0]!.ca, certs.caCertPem);
    const cases: [string | Buffer, RegExp][] = [
      ['not a certificate', /no PEM certificate/],
      [certs.server.keyPem, /private key/],
      ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /certificate 1 does not parse/],
      [Buffer.from([0x30, 0x82, 0x01]), /no PEM certificate/],
    ];
    for (const [ca, why] of cases) {
      const error = configError({ issuers: [issuer(A, { ca })] });
      assert.equal(error.key, 'issuers[0].ca');
      assert.match(error.message, why);
      assert.ok(!error.message.includes('PRIVATE KEY-----'), 'the file content is never quoted');
    }
  });
});

describe('a JWKS body is read through the 1 MiB cap', () => {
  test('a JWKS endpoint streaming 50 MiB is cut at the cap; the login gets [SYS/TEMP]', async (t) => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    let fetches = 0;
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      res.on('close', () => closed());
      const pump = () => {
        while (sent < total && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (!res.destroyed) res.end(']}');
      };
      pump();
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      jwks.closeAllConnections();
      jwks.close();
    });
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    const validator = createTokenValidator({
      issuers: [{ issuer: A, audience: 'pop3', jwksUrl: url }],
      allowInsecureLoopback: true,
      httpTimeoutMs: 60_000,
    });
    const store = new MaildirStore(join(dir, 'mail'));
    const server = createPop3Server({
      listen: ['pop3://127.0.0.1:0'],
      allowPlaintextLoopback: true,
      validator,
      store,
      limits: { failedLoginDelayMs: 0 },
    });
    const [address] = await server.listen();
    t.after(async () => {
      await server.close({ graceMs: 0 });
      await store.close();
    });

    const token = await sign(A, { email: 'alice@a.test' });
    const error = await refusal(validator.validate(token, { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    assert.equal(error.temporary, true);
    let cause: unknown = error;
    const messages: string[] = [];
    while (cause instanceof Error) {
      messages.push(cause.message);
      cause = cause.cause;
    }
    assert.ok(
      messages.some((m) => /response larger than 1048576 bytes/.test(m)),
      messages.join(' <- '),
    );
    await connectionClosed;
    // The reader stopped at the cap: the endpoint got to write little more than the cap plus
    // what the socket buffers took, not the 50 MiB it meant to send.
    assert.ok(sent < 16 * 1024 * 1024, `the endpoint wrote ${sent} bytes`);

    const c = await WireClient.connect(address!.port);
    t.after(() => c.close());
    await c.line();
    assert.match(await c.command(`AUTH XOAUTH2 ${xoauth2('alice@a.test', token)}`), /^-ERR \[SYS\/TEMP\] /);
    assert.ok(fetches >= 1);
  });
});

describe("the issuer's HTTP client", () => {
  test('a pooled connection the server dropped is retried once on a fresh one', async (t) => {
    // The server answers the first request of each connection and drops the connection when a
    // second request arrives on it: the client's reused socket fails with ECONNRESET.
    const perSocket = new WeakMap<object, number>();
    let requests = 0;
    const idp = createServer((req, res) => {
      requests++;
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n > 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ n: requests }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      idp.closeAllConnections();
      idp.close();
    });
    const url = new URL(`http://127.0.0.1:${(idp.address() as AddressInfo).port}/x`);
    const http = new IssuerHttp(undefined);
    t.after(() => http.close());
    assert.deepEqual((await http.json(url, { method: 'GET', timeoutMs: 5000 })).body, { n: 1 });
    assert.deepEqual((await http.json(url, { method: 'GET', timeoutMs: 5000 })).body, { n: 3 });
    assert.equal(requests, 3);
  });
});

describe('TLS to the issuer: the reason and the fix are named', () => {
  test('an IP-literal issuer: untrusted without ca, verified with it, and a certificate for another name refused', async (t) => {
    const certs = await createTestCerts(t);
    const other = await certs.ca.issue('other-name', ['DNS:other.test']);
    const serve = async (cert: { certPem: string; keyPem: string }) => {
      const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
        const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === '/jwks') res.end(JSON.stringify({ keys: [] }));
        else res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(() => {
        server.closeAllConnections();
        server.close();
      });
      return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    const check = async (iss: string, ca?: string) => {
      const v = createTokenValidator({ issuers: [{ issuer: iss, audience: 'pop3', ...(ca ? { ca } : {}) }] });
      t.after(() => v.close());
      const [result] = await v.checkIssuers();
      return result!;
    };
    const good = await serve(certs.server);
    const untrusted = await check(good);
    assert.equal(untrusted.ok, false);
    assert.equal(
      untrusted.reason,
      "the issuer's certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
    );
    assert.match(untrusted.hint ?? '', /ca in \[\[server\.issuers\]\] or --issuer-ca FILE/);
    assert.deepEqual(await check(good, certs.caCertPem), { issuer: good, ok: true, contacted: true });
    const misnamed = await check(await serve(other), certs.caCertPem);
    assert.equal(
      misnamed.reason,
      "the issuer's certificate does not name 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID)",
    );
  });
});
