// JWT access tokens (RFC 9068) against a local issuer on 127.0.0.1: discovery, JWKS, rotation,
// and every refusal the server must make. Tokens are minted with jose.
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import {
  AUTH_CHANNEL,
  type AuthEvent,
  createTokenValidator,
  type IssuerOptions,
} from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
  spki: string;
}

async function makeKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<Key> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey: pair.privateKey, jwk, spki: await exportSPKI(pair.publicKey) };
}

/** A minimal issuer: metadata, JWKS (mutable, fetches counted). */
class LocalIssuer {
  server: Server;
  keys: Key[] = [];
  jwksFetches = 0;
  metadataMode: 'oidc' | 'rfc8414' | 'wrong-issuer' = 'oidc';
  jwksDown = false;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const metadata = {
        issuer: this.metadataMode === 'wrong-issuer' ? 'https://evil.example' : this.url,
        jwks_uri: `${this.url}/jwks`,
      };
      if (req.url === '/.well-known/openid-configuration') {
        return this.metadataMode === 'rfc8414' ? send(404, {}) : send(200, metadata);
      }
      if (req.url === '/.well-known/oauth-authorization-server' && this.metadataMode === 'rfc8414') {
        return send(200, metadata);
      }
      if (req.url === '/jwks') {
        this.jwksFetches++;
        if (this.jwksDown) return send(503, {});
        return send(200, { keys: this.keys.map((k) => k.jwk) });
      }
      send(404, {});
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const AUDIENCE = 'pop3.example.test';
let idp: LocalIssuer;
let key1: Key;

function claims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: idp.url,
    aud: AUDIENCE,
    sub: 'user-123',
    client_id: 'mail-client',
    email: 'Alice@Example.test',
    scope: 'openid pop3',
    iat: now,
    exp: now + 300,
    jti: `j${Math.random()}`,
    ...overrides,
  };
}

async function sign(payload: JWTPayload, options: { key?: Key; typ?: string | null; header?: object } = {}) {
  const key = options.key ?? key1;
  const typ = options.typ === undefined ? 'at+jwt' : options.typ;
  const header = {
    alg: key.jwk.alg as string,
    kid: key.kid,
    ...(typ === null ? {} : { typ }),
    ...options.header,
  };
  return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
}

function validator(overrides: Partial<IssuerOptions> = {}, extra: Record<string, unknown> = {}) {
  return createTokenValidator({
    issuers: [{ issuer: idp.url, audience: AUDIENCE, ...overrides }],
    allowInsecureLoopback: true,
    ...extra,
  });
}

async function refusal(promise: Promise<unknown>): Promise<TokenValidationError> {
  const error = await promise.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof TokenValidationError, `not a TokenValidationError: ${String(error)}`);
  return error;
}

before(async () => {
  idp = new LocalIssuer();
  await idp.start();
  key1 = await makeKey('k1');
  idp.keys = [key1];
});
after(() => idp.stop());

describe('JWT access tokens', () => {
  test('a valid token is accepted and yields user, scopes, rights, client and expiry', async () => {
    const v = validator();
    const payload = claims({ scope: 'pop3 pop3.delete' });
    const token = await v.validate(await sign(payload), { user: 'alice@example.test' });
    assert.equal(token.user, 'alice@example.test');
    assert.equal(token.issuer, idp.url);
    assert.equal(token.subject, 'user-123');
    assert.equal(token.clientId, 'mail-client');
    assert.deepEqual([...token.scopes].sort(), ['pop3', 'pop3.delete']);
    assert.deepEqual(token.rights, { read: true, delete: true });
    assert.equal(token.method, 'jwt');
    assert.equal(token.expiresAt?.getTime(), (payload.exp as number) * 1000);
  });

  test('the SASL user is compared case-insensitively for email and the user is canonical', async () => {
    const token = await validator().validate(await sign(claims()), { user: 'ALICE@example.TEST' });
    assert.equal(token.user, 'alice@example.test');
  });

  test('without a SASL user the token user claim names the login', async () => {
    const token = await validator().validate(await sign(claims()), { user: undefined });
    assert.equal(token.user, 'alice@example.test');
  });

  test('a SASL user that differs from the token user claim is refused', async () => {
    const error = await refusal(validator().validate(await sign(claims()), { user: 'bob@example.test' }));
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
    assert.equal(error.temporary, false);
  });

  test('the sub claim is compared exactly (case-sensitive)', async () => {
    const v = validator({ userClaim: 'sub' });
    assert.equal((await v.validate(await sign(claims()), { user: 'user-123' })).user, 'user-123');
    const error = await refusal(v.validate(await sign(claims()), { user: 'USER-123' }));
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
  });

  test('a token without the configured user claim is refused', async () => {
    const error = await refusal(
      validator({ userClaim: 'upn' }).validate(await sign(claims()), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /upn/);
  });

  test('a user claim that is not a safe maildrop name is refused', async () => {
    const error = await refusal(
      validator().validate(await sign(claims({ email: '../root' })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
  });

  test('an email marked unverified is refused', async () => {
    const token = await sign(claims({ email_verified: false }));
    assert.equal(
      (await refusal(validator().validate(token, { user: undefined }))).code,
      'ERR_AUTH_INVALID_TOKEN',
    );
  });

  test('an expired token is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const error = await refusal(
      validator().validate(await sign(claims({ iat: now - 900, exp: now - 600 })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /expired/);
  });

  test('expiry within the configured leeway is accepted, beyond it refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(claims({ iat: now - 600, exp: now - 30 }));
    await validator({ clockToleranceSeconds: 120 }).validate(token, { user: undefined });
    const error = await refusal(validator({ clockToleranceSeconds: 5 }).validate(token, { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
  });

  test('a token without exp is refused', async () => {
    const payload = claims();
    delete payload.exp;
    assert.equal(
      (await refusal(validator().validate(await sign(payload), { user: undefined }))).code,
      'ERR_AUTH_INVALID_TOKEN',
    );
  });

  test('a not-yet-valid token is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const error = await refusal(
      validator().validate(await sign(claims({ nbf: now + 600 })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /not valid yet/);
  });

  test('a token for another audience is refused', async () => {
    const error = await refusal(
      validator().validate(await sign(claims({ aud: 'other-api' })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_AUDIENCE');
  });

  test('a token without aud is refused by default', async () => {
    const payload = claims();
    delete payload.aud;
    assert.equal(
      (await refusal(validator().validate(await sign(payload), { user: undefined }))).code,
      'ERR_AUTH_AUDIENCE',
    );
  });

  test('aud may be an array holding the configured audience', async () => {
    await validator().validate(await sign(claims({ aud: ['other', AUDIENCE] })), { user: undefined });
  });

  test('a token from an issuer that is not configured is refused without fetching anything', async () => {
    const before = idp.jwksFetches;
    const error = await refusal(
      validator().validate(await sign(claims({ iss: 'https://attacker.example' })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_ISSUER');
    assert.equal(idp.jwksFetches, before);
  });

  test('a token claiming a trusted issuer but signed by another key is refused', async () => {
    const stranger = await makeKey('k1');
    const error = await refusal(
      validator().validate(await sign(claims(), { key: stranger }), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
  });

  test('typ JWT is refused by default (RFC 9068 at+jwt required)', async () => {
    const error = await refusal(
      validator().validate(await sign(claims(), { typ: 'JWT' }), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_TYPE');
  });

  test('typ application/at+jwt is accepted', async () => {
    await validator().validate(await sign(claims(), { typ: 'application/at+jwt' }), { user: undefined });
  });

  test('typ JWT is accepted when the issuer is configured for it', async () => {
    await validator({ typ: ['at+jwt', 'JWT'] }).validate(await sign(claims(), { typ: 'JWT' }), {
      user: undefined,
    });
  });

  test('a missing typ is refused unless allowMissingTyp', async () => {
    const token = await sign(claims(), { typ: null });
    assert.equal((await refusal(validator().validate(token, { user: undefined }))).code, 'ERR_AUTH_TYPE');
    await validator({ allowMissingTyp: true }).validate(token, { user: undefined });
  });

  test('a Keycloak-style ID token (typ claim ID) is refused even under a lax typ header rule', async () => {
    const token = await sign(claims({ typ: 'ID' }), { typ: 'JWT' });
    const error = await refusal(validator({ typ: ['JWT'] }).validate(token, { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_TYPE');
  });

  test('a sender-constrained token (cnf) is refused', async () => {
    const token = await sign(claims({ cnf: { jkt: 'abc' } }));
    assert.equal((await refusal(validator().validate(token, { user: undefined }))).code, 'ERR_AUTH_TYPE');
  });

  test('a token without the read scope is refused and the challenge names the scope', async () => {
    const v = validator();
    const error = await refusal(
      v.validate(await sign(claims({ scope: 'openid email' })), { user: undefined }),
    );
    assert.equal(error.code, 'ERR_AUTH_SCOPE');
    assert.equal(error.requiredScope, 'pop3');
    assert.deepEqual(v.challenge(error), {
      scope: 'pop3',
      openidConfiguration: `${idp.url}/.well-known/openid-configuration`,
    });
  });

  test('scp as an array grants rights (Okta style)', async () => {
    const v = validator({ scopes: { read: ['mail.read'], delete: ['mail.delete'] } });
    const payload = claims({ scp: ['mail.read', 'mail.delete'] });
    delete payload.scope;
    const token = await v.validate(await sign(payload), { user: undefined });
    assert.deepEqual(token.rights, { read: true, delete: true });
  });

  test('scp as a space-separated string grants rights (Entra ID style)', async () => {
    const v = validator({ scopes: { read: 'POP.AccessAsUser.All' } });
    const token = await v.validate(
      await sign(claims({ scope: undefined, scp: 'User.Read POP.AccessAsUser.All' })),
      {
        user: undefined,
      },
    );
    assert.equal(token.rights.read, true);
  });

  test('a read-only scope logs in without the delete right', async () => {
    const v = validator({ scopes: { read: ['pop3', 'pop3.read'], delete: ['pop3'] } });
    const token = await v.validate(await sign(claims({ scope: 'pop3.read' })), { user: undefined });
    assert.deepEqual(token.rights, { read: true, delete: false });
  });

  test('a tampered payload (signature no longer matches) is refused', async () => {
    const token = await sign(claims());
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(claims({ email: 'mallory@example.test' }))).toString('base64url')}.${s}`;
    const error = await refusal(validator().validate(forged, { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /signature/);
  });

  test('alg none is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: 'k1' })).toString(
      'base64url',
    );
    const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
    const error = await refusal(validator().validate(`${header}.${payload}.`, { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
  });

  test('HS256 signed with the public key bytes (PEM and JWK modulus) is refused', async () => {
    const v = validator();
    for (const secret of [Buffer.from(key1.spki), Buffer.from(key1.jwk.n!, 'base64url')]) {
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' })).toString(
        'base64url',
      );
      const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
      const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      const error = await refusal(v.validate(`${header}.${payload}.${mac}`, { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    }
  });

  test('an algorithm outside the issuer allow-list is refused even with a valid key', async () => {
    const ec = await makeKey('ec1', 'ES256');
    idp.keys = [key1, ec];
    try {
      const v = validator({ algorithms: ['RS256'] });
      const error = await refusal(v.validate(await sign(claims(), { key: ec }), { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
      await validator().validate(await sign(claims(), { key: ec }), { user: undefined });
    } finally {
      idp.keys = [key1];
    }
  });

  test('a key whose JWK alg differs from the header alg is not used (alg bound to the key)', async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ps', alg: 'PS256', use: 'sig' };
    idp.keys = [key1, { kid: 'ps', jwk, privateKey: pair.privateKey as unknown as CryptoKey, spki: '' }];
    try {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', kid: 'ps', typ: 'at+jwt' })
        .sign(pair.privateKey);
      const error = await refusal(validator().validate(token, { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    } finally {
      idp.keys = [key1];
    }
  });

  test('garbage and over-long tokens are refused as invalid, not as outages', async () => {
    const v = validator();
    for (const token of ['', 'a.b.c', 'not a token', 'x'.repeat(70_000)]) {
      const error = await refusal(v.validate(token, { user: undefined }));
      assert.equal(error.temporary, false, token.slice(0, 10));
    }
  });
});

describe('keys and rotation', () => {
  test('an unknown kid after a key rotation is accepted after one JWKS refetch', async () => {
    const v = validator({}, { jwksCooldownSeconds: 0 });
    await v.validate(await sign(claims()), { user: undefined });
    const key2 = await makeKey('k2');
    idp.keys = [key1, key2];
    try {
      const fetches = idp.jwksFetches;
      const token = await v.validate(await sign(claims(), { key: key2 }), { user: undefined });
      assert.equal(token.user, 'alice@example.test');
      assert.equal(idp.jwksFetches, fetches + 1);
      await v.validate(await sign(claims(), { key: key2 }), { user: undefined });
      assert.equal(idp.jwksFetches, fetches + 1, 'the rotated key is cached');
    } finally {
      idp.keys = [key1];
    }
  });

  test('unknown kids within the cooldown do not refetch the JWKS (no amplification)', async () => {
    const v = validator({}, { jwksCooldownSeconds: 300 });
    await v.validate(await sign(claims()), { user: undefined });
    const fetches = idp.jwksFetches;
    for (let i = 0; i < 5; i++) {
      const stranger = await makeKey(`unknown-${i}`);
      const error = await refusal(v.validate(await sign(claims(), { key: stranger }), { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    }
    assert.equal(idp.jwksFetches, fetches);
  });

  test('a JWKS outage is ERR_AUTH_UNAVAILABLE (temporary), never a refusal', async () => {
    idp.jwksDown = true;
    try {
      const error = await refusal(validator().validate(await sign(claims()), { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
      assert.equal(error.temporary, true);
    } finally {
      idp.jwksDown = false;
    }
  });

  test('during a JWKS outage the keys fetched before still verify; an unknown kid is an outage', async () => {
    const v = validator({}, { jwksMaxAgeSeconds: 1, jwksCooldownSeconds: 0 });
    await v.validate(await sign(claims()), { user: undefined });
    idp.jwksDown = true;
    try {
      await new Promise((resolve) => setTimeout(resolve, 1100)); // past the JWKS max age
      const fetches = idp.jwksFetches;
      await v.validate(await sign(claims()), { user: undefined });
      assert.ok(idp.jwksFetches > fetches, 'a refresh was attempted');
      const error = await refusal(
        v.validate(await sign(claims(), { key: await makeKey('k9') }), { user: undefined }),
      );
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    } finally {
      idp.jwksDown = false;
    }
  });

  test('an unreachable issuer is ERR_AUTH_UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const v = createTokenValidator({
      issuers: [{ issuer: idp.url, audience: AUDIENCE, jwksUrl: `http://127.0.0.1:${port}/jwks` }],
      allowInsecureLoopback: true,
    });
    const error = await refusal(v.validate(await sign(claims()), { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
  });

  test('discovery falls back to RFC 8414 metadata', async () => {
    idp.metadataMode = 'rfc8414';
    try {
      await validator().validate(await sign(claims()), { user: undefined });
    } finally {
      idp.metadataMode = 'oidc';
    }
  });

  test('metadata naming another issuer is not trusted (RFC 8414 section 3.3)', async () => {
    idp.metadataMode = 'wrong-issuer';
    try {
      const error = await refusal(validator().validate(await sign(claims()), { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    } finally {
      idp.metadataMode = 'oidc';
    }
  });

  test('a configured JWKS URL is used without discovery', async () => {
    const v = validator({ jwksUrl: `${idp.url}/jwks` });
    await v.validate(await sign(claims()), { user: undefined });
  });

  test('a JWKS file is reread when an unknown kid appears after the cooldown', async () => {
    const { mkdtemp, rm, writeFile, rename } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'popgate-auth-'));
    try {
      const file = join(dir, 'jwks.json');
      await writeFile(file, JSON.stringify({ keys: [key1.jwk] }));
      const v = validator({ jwksFile: file }, { jwksCooldownSeconds: 0 });
      await v.validate(await sign(claims()), { user: undefined });
      const key3 = await makeKey('k3');
      await writeFile(`${file}.new`, JSON.stringify({ keys: [key1.jwk, key3.jwk] }));
      await rename(`${file}.new`, file);
      await v.validate(await sign(claims(), { key: key3 }), { user: undefined });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('several issuers each use their own keys and audience', async () => {
    const other = new LocalIssuer();
    await other.start();
    try {
      const otherKey = await makeKey('k1');
      other.keys = [otherKey];
      const v = createTokenValidator({
        issuers: [
          { issuer: idp.url, audience: AUDIENCE, domains: 'example.test' },
          {
            issuer: other.url,
            audience: 'second-aud',
            userClaim: 'preferred_username',
            typ: ['JWT'],
            domains: 'other.test',
          },
        ],
        allowInsecureLoopback: true,
      });
      await v.validate(await sign(claims({ email_verified: true })), { user: 'alice@example.test' });
      const second = await sign(claims({ iss: other.url, aud: 'second-aud', preferred_username: 'Bob' }), {
        key: otherKey,
        typ: 'JWT',
      });
      assert.equal((await v.validate(second, { user: 'bob' })).user, 'bob@other.test');
      // The first issuer's audience is not valid at the second issuer.
      const crossed = await sign(claims({ iss: other.url, preferred_username: 'bob' }), {
        key: otherKey,
        typ: 'JWT',
      });
      assert.equal((await refusal(v.validate(crossed, { user: undefined }))).code, 'ERR_AUTH_AUDIENCE');
      // Same kid, other issuer's key: the token is bound to its issuer's JWKS.
      const wrongKey = await sign(claims({ iss: other.url, aud: 'second-aud', preferred_username: 'bob' }), {
        typ: 'JWT',
      });
      assert.equal((await refusal(v.validate(wrongKey, { user: undefined }))).code, 'ERR_AUTH_INVALID_TOKEN');
    } finally {
      await other.stop();
    }
  });
});

describe('observability and secrecy', () => {
  test('validation, JWKS and discovery events reach the callback and the diagnostics channel', async () => {
    const events: AuthEvent[] = [];
    const channelEvents: AuthEvent[] = [];
    const listener = (message: unknown) => channelEvents.push(message as AuthEvent);
    subscribe(AUTH_CHANNEL, listener);
    try {
      const v = createTokenValidator(
        { issuers: [{ issuer: idp.url, audience: AUDIENCE }], allowInsecureLoopback: true },
        { onEvent: (e) => events.push(e) },
      );
      await v.validate(await sign(claims()), { user: undefined });
      await refusal(v.validate(await sign(claims({ aud: 'x' })), { user: undefined }));
      const types = events.map((e) => e.type);
      assert.ok(types.includes('discovery'));
      assert.ok(types.includes('jwks-fetch'));
      const validations = events.filter((e) => e.type === 'validation');
      assert.deepEqual(
        validations.map((e) => [e.result, e.code, e.method]),
        [
          ['ok', undefined, 'jwt'],
          ['refused', 'ERR_AUTH_AUDIENCE', 'jwt'],
        ],
      );
      assert.ok(validations.every((e) => e.durationMs >= 0));
      assert.deepEqual(channelEvents, events);
    } finally {
      unsubscribe(AUTH_CHANNEL, listener);
    }
  });

  test('no part of a refused token appears in the error message, fields, cause or events', async () => {
    const events: AuthEvent[] = [];
    const v = createTokenValidator(
      { issuers: [{ issuer: idp.url, audience: AUDIENCE }], allowInsecureLoopback: true },
      { onEvent: (e) => events.push(e) },
    );
    const token = await sign(claims({ aud: 'elsewhere' }));
    const error = await refusal(v.validate(token, { user: undefined }));
    const signature = token.split('.')[2]!;
    const payload = token.split('.')[1]!;
    const visible = [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 5 }),
      JSON.stringify(events),
    ].join('\n');
    assert.ok(!visible.includes(signature));
    assert.ok(!visible.includes(payload.slice(0, 40)));
  });
});
