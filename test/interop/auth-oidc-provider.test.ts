// The validator against a real authorization server: oidc-provider 9 on 127.0.0.1 issuing JWT
// access tokens (RFC 9068, via resource indicators) for the POP3 resource and opaque tokens for a
// second resource, an introspection client, and key rotation. Every token here is minted by
// oidc-provider itself; refusals that oidc-provider cannot produce honestly (alg none, HS256 with
// the public key, a tampered signature) are forged from its real tokens and its published keys.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import { type AuthEvent, createTokenValidator, type PopgateTokenValidator } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';

const POP3 = 'urn:popgate:pop3';
const OPAQUE = 'urn:popgate:pop3-opaque';
const OTHER = 'urn:example:other-api';
const USER = 'alice@example.test';

type Customize = (jwt: { header?: Record<string, unknown>; payload: Record<string, unknown> }) => void;

interface ProviderLike {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}

/** oidc-provider on a fixed port, rebuilt with new keys by rotate(). */
class RealIssuer {
  server: Server;
  url = '';
  keys: JWK[] = [];
  customize: Customize | undefined;
  client = { id: 'mail-app', secret: randomBytes(24).toString('base64url') };
  introspector = { id: 'popgate-pop3-server', secret: randomBytes(24).toString('base64url') };
  #handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  #down = false;

  constructor() {
    this.server = createServer((req, res) => {
      if (this.#down) return void req.socket.destroy();
      this.#handler(req, res);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.keys = [await newKey()];
    await this.#build();
  }

  /** Publishes a new signing key first (it signs from now on) and keeps the old one verifiable. */
  async rotate(): Promise<string> {
    const key = await newKey();
    this.keys = [key, ...this.keys];
    await this.#build();
    return key.kid!;
  }

  setDown(down: boolean): void {
    this.#down = down;
  }

  async #build(): Promise<void> {
    const { default: Provider } = (await import('oidc-provider' as string)) as {
      default: new (issuer: string, config: Record<string, unknown>) => ProviderLike;
    };
    const resources: Record<string, Record<string, unknown>> = {
      [POP3]: {
        scope: 'pop3 pop3.delete',
        audience: POP3,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      },
      [OPAQUE]: { scope: 'pop3 pop3.delete', audience: OPAQUE, accessTokenFormat: 'opaque' },
      [OTHER]: { scope: 'pop3', audience: OTHER, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } },
    };
    const provider = new Provider(this.url, {
      clients: [
        {
          client_id: this.client.id,
          client_secret: this.client.secret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
        },
        {
          client_id: this.introspector.id,
          client_secret: this.introspector.secret,
          grant_types: [],
          response_types: [],
          redirect_uris: [],
        },
      ],
      jwks: { keys: this.keys },
      cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
      scopes: ['pop3', 'pop3.delete'],
      // The login name the POP3 server binds to the token (client credentials have no sub).
      extraTokenClaims: async () => ({ email: USER }),
      formats: {
        customizers: {
          jwt: async (_ctx: unknown, _token: unknown, jwt: Parameters<Customize>[0]) => this.customize?.(jwt),
        },
      },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: {
          enabled: true,
          allowedPolicy: async (_ctx: unknown, client: { clientId: string }) =>
            client.clientId === this.introspector.id,
        },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => POP3,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
            const info = resources[indicator];
            if (!info) throw new Error(`unknown resource ${indicator}`);
            return info;
          },
        },
      },
    });
    this.#handler = provider.callback();
  }

  #basic(id: string, secret: string): string {
    return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  }

  /** A client-credentials access token for `resource` with `scope`. */
  async mint(resource: string, scope: string, customize?: Customize): Promise<string> {
    this.customize = customize;
    try {
      const response = await fetch(`${this.url}/token`, {
        method: 'POST',
        headers: {
          authorization: this.#basic(this.client.id, this.client.secret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
      });
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(response.status, 200, JSON.stringify(body));
      return body.access_token as string;
    } finally {
      this.customize = undefined;
    }
  }

  async revoke(token: string): Promise<void> {
    const response = await fetch(`${this.url}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: this.#basic(this.client.id, this.client.secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal(response.status, 200);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function newKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

let idp: RealIssuer;

function validator(extra: Record<string, unknown> = {}, deps = {}): PopgateTokenValidator {
  return createTokenValidator(
    {
      issuers: [
        {
          issuer: idp.url,
          audience: [POP3, OPAQUE],
          scopes: { read: 'pop3', delete: 'pop3.delete' },
          introspection: { clientId: idp.introspector.id, clientSecret: idp.introspector.secret },
        },
      ],
      allowInsecureLoopback: true,
      ...extra,
    },
    deps,
  );
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
  idp = new RealIssuer();
  await idp.start();
});
after(() => idp.stop());

describe('JWT access tokens from oidc-provider', () => {
  test('a valid at+jwt for the POP3 resource is accepted with its scopes mapped to rights', async () => {
    const jwt = await idp.mint(POP3, 'pop3 pop3.delete');
    assert.equal(decodeProtectedHeader(jwt).typ, 'at+jwt');
    const token = await validator().validate(jwt, { user: 'Alice@Example.TEST' });
    assert.equal(token.user, USER);
    assert.equal(token.method, 'jwt');
    assert.equal(token.clientId, idp.client.id);
    assert.deepEqual(token.rights, { read: true, delete: true });
  });

  test('a read-only token logs in without the delete right', async () => {
    const token = await validator().validate(await idp.mint(POP3, 'pop3'), { user: USER });
    assert.deepEqual(token.rights, { read: true, delete: false });
  });

  test('a token without the read scope is refused with the RFC 7628 challenge fields', async () => {
    const v = validator();
    const error = await refusal(v.validate(await idp.mint(POP3, 'pop3.delete'), { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_SCOPE');
    assert.deepEqual(v.challenge(error), {
      scope: 'pop3',
      openidConfiguration: `${idp.url}/.well-known/openid-configuration`,
    });
    // The advertised URL is oidc-provider's real discovery document.
    const metadata = (await (await fetch(v.challenge(error).openidConfiguration!)).json()) as {
      issuer: string;
    };
    assert.equal(metadata.issuer, idp.url);
  });

  test('a token for another resource (audience) is refused', async () => {
    const error = await refusal(validator().validate(await idp.mint(OTHER, 'pop3'), { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_AUDIENCE');
  });

  test('an expired token is refused', async () => {
    const jwt = await idp.mint(POP3, 'pop3');
    const later = validator({ clockToleranceSeconds: 0 }, { now: () => Date.now() + 2 * 3600_000 });
    const error = await refusal(later.validate(jwt, { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /expired/);
  });

  test('a not-yet-valid token (nbf in the future) is refused', async () => {
    const jwt = await idp.mint(POP3, 'pop3', (t) => {
      t.payload.nbf = Math.floor(Date.now() / 1000) + 600;
    });
    const error = await refusal(validator().validate(jwt, { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    assert.match(error.message, /not valid yet/);
  });

  test('a token with typ JWT is refused by default and accepted when the issuer allows it', async () => {
    const jwt = await idp.mint(POP3, 'pop3', (t) => {
      t.header = { ...t.header, typ: 'JWT' };
    });
    assert.equal((await refusal(validator().validate(jwt, { user: USER }))).code, 'ERR_AUTH_TYPE');
    const lax = createTokenValidator({
      issuers: [{ issuer: idp.url, audience: POP3, typ: ['at+jwt', 'JWT'] }],
      allowInsecureLoopback: true,
    });
    await lax.validate(jwt, { user: USER });
  });

  test('a token from an issuer that is not configured is refused', async () => {
    const stranger = new RealIssuer();
    await stranger.start();
    try {
      const error = await refusal(validator().validate(await stranger.mint(POP3, 'pop3'), { user: USER }));
      assert.equal(error.code, 'ERR_AUTH_ISSUER');
    } finally {
      await stranger.stop();
    }
  });

  test('a user other than the token user is refused', async () => {
    const error = await refusal(
      validator().validate(await idp.mint(POP3, 'pop3'), { user: 'bob@example.test' }),
    );
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
  });

  test('a tampered token (claims changed, signature kept) is refused', async () => {
    const [h, p, s] = (await idp.mint(POP3, 'pop3')).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.scope = 'pop3 pop3.delete';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    assert.equal(
      (await refusal(validator().validate(forged, { user: USER }))).code,
      'ERR_AUTH_INVALID_TOKEN',
    );
  });

  test('alg none is refused', async () => {
    const [h, p] = (await idp.mint(POP3, 'pop3')).split('.') as [string, string];
    const header = { ...JSON.parse(Buffer.from(h, 'base64url').toString()), alg: 'none' };
    const forged = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.`;
    assert.equal(
      (await refusal(validator().validate(forged, { user: USER }))).code,
      'ERR_AUTH_INVALID_TOKEN',
    );
  });

  test('HS256 signed with the issuer public key (from its JWKS) is refused', async () => {
    const [h, p] = (await idp.mint(POP3, 'pop3')).split('.') as [string, string];
    const jwks = (await (await fetch(`${idp.url}/jwks`)).json()) as { keys: JWK[] };
    const header = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), alg: 'HS256' }),
    ).toString('base64url');
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(jwks.keys[0]))]) {
      const mac = createHmac('sha256', secret).update(`${header}.${p}`).digest('base64url');
      const error = await refusal(validator().validate(`${header}.${p}.${mac}`, { user: USER }));
      assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
    }
  });

  test('after a key rotation at the issuer, a token with the new kid is accepted after a refetch', async () => {
    const v = validator({ jwksCooldownSeconds: 0 });
    await v.validate(await idp.mint(POP3, 'pop3'), { user: USER });
    const newKid = await idp.rotate();
    const jwt = await idp.mint(POP3, 'pop3');
    assert.equal(decodeProtectedHeader(jwt).kid, newKid);
    const token = await v.validate(jwt, { user: USER });
    assert.equal(token.user, USER);
  });

  test('an issuer outage is ERR_AUTH_UNAVAILABLE (answered [SYS/TEMP]), not a refusal', async () => {
    const jwt = await idp.mint(POP3, 'pop3');
    idp.setDown(true);
    try {
      const error = await refusal(validator({ httpTimeoutMs: 2000 }).validate(jwt, { user: USER }));
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
      assert.equal(error.temporary, true);
    } finally {
      idp.setDown(false);
    }
  });
});

describe('opaque access tokens introspected at oidc-provider', () => {
  test('a real opaque token is introspected, accepted, then served from the cache', async () => {
    const opaque = await idp.mint(OPAQUE, 'pop3 pop3.delete');
    assert.ok(!opaque.includes('.'), 'oidc-provider issued an opaque token');
    const results: string[] = [];
    const v = validator(
      {},
      {
        onEvent: (e: AuthEvent) => {
          if (e.type === 'introspection') results.push(`${e.outcome}:${e.status}`);
          if (e.type === 'validation') results.push(`${e.result}:${e.cache}`);
        },
      },
    );
    const token = await v.validate(opaque, { user: USER });
    assert.equal(token.method, 'introspection');
    assert.equal(token.user, USER);
    assert.equal(token.clientId, idp.client.id);
    assert.deepEqual(token.rights, { read: true, delete: true });
    assert.ok(token.expiresAt && token.expiresAt.getTime() > Date.now());
    assert.equal(v.introspectionCacheSize, 1);
    await v.validate(opaque, { user: USER });
    assert.deepEqual(results, ['active:200', 'ok:miss', 'ok:hit']);
  });

  test('client_secret_post authentication is accepted by oidc-provider too', async () => {
    const v = createTokenValidator({
      issuers: [
        {
          issuer: idp.url,
          audience: OPAQUE,
          introspection: {
            clientId: idp.introspector.id,
            clientSecret: idp.introspector.secret,
            clientAuth: 'client_secret_post',
          },
        },
      ],
      allowInsecureLoopback: true,
    });
    await v.validate(await idp.mint(OPAQUE, 'pop3'), { user: USER });
  });

  test('a revoked opaque token is inactive', async () => {
    const opaque = await idp.mint(OPAQUE, 'pop3');
    await idp.revoke(opaque);
    const error = await refusal(validator().validate(opaque, { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_INACTIVE');
  });

  test('an unknown opaque token is inactive', async () => {
    const error = await refusal(validator().validate(randomBytes(32).toString('base64url'), { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_INACTIVE');
  });

  test('wrong introspection credentials are an outage, not a refusal of the user', async () => {
    const v = createTokenValidator({
      issuers: [
        {
          issuer: idp.url,
          audience: OPAQUE,
          introspection: { clientId: idp.introspector.id, clientSecret: 'wrong-secret' },
        },
      ],
      allowInsecureLoopback: true,
    });
    const error = await refusal(v.validate(await idp.mint(OPAQUE, 'pop3'), { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
  });

  test('an opaque token without the read scope is refused', async () => {
    const error = await refusal(validator().validate(await idp.mint(OPAQUE, 'pop3.delete'), { user: USER }));
    assert.equal(error.code, 'ERR_AUTH_SCOPE');
  });

  test('an introspection outage is ERR_AUTH_UNAVAILABLE', async () => {
    const opaque = await idp.mint(OPAQUE, 'pop3');
    const v = validator({ httpTimeoutMs: 2000 });
    await v.warmUp();
    idp.setDown(true);
    try {
      const error = await refusal(v.validate(opaque, { user: USER }));
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    } finally {
      idp.setDown(false);
    }
  });
});
