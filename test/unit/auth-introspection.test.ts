// Opaque tokens through RFC 7662 introspection against a scripted endpoint on 127.0.0.1:
// client authentication, active/inactive, caching bounded by TTL, exp and size, outages.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { type AuthEvent, createTokenValidator, type IssuerOptions } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';
import type { Logger } from '../../src/observability/logger.ts';

interface Seen {
  authorization: string | undefined;
  form: URLSearchParams;
}

type Answer = { status: number; body: unknown } | 'hang' | 'reset';

/** Introspection endpoint whose answers the tests script per token. */
class Endpoint {
  server: Server;
  url = '';
  seen: Seen[] = [];
  answer: (form: URLSearchParams) => Answer = () => ({ status: 200, body: { active: false } });

  constructor() {
    this.server = createServer(async (req: IncomingMessage, res) => {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: this.url, introspection_endpoint: `${this.url}/introspect` }));
        return;
      }
      const form = new URLSearchParams(raw);
      this.seen.push({ authorization: req.headers.authorization, form });
      const answer = this.answer(form);
      if (answer === 'hang') return;
      if (answer === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  }

  async start() {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const AUDIENCE = 'urn:popgate:pop3';
const SECRET = 'se:cr et/+%&=';
let endpoint: Endpoint;
let clock = Date.now();

function activeBody(overrides: Record<string, unknown> = {}) {
  return {
    active: true,
    iss: endpoint.url,
    aud: AUDIENCE,
    sub: 'u1',
    username: 'Alice@Example.test',
    client_id: 'mail-client',
    scope: 'pop3',
    token_type: 'Bearer',
    exp: Math.floor(clock / 1000) + 600,
    ...overrides,
  };
}

function issuer(overrides: Partial<IssuerOptions> = {}): IssuerOptions {
  return {
    issuer: endpoint.url,
    method: 'introspection',
    audience: AUDIENCE,
    userClaim: 'username',
    introspection: { endpoint: `${endpoint.url}/introspect`, clientId: 'pop3-server', clientSecret: SECRET },
    ...overrides,
  };
}

function validator(overrides: Partial<IssuerOptions> = {}, extra: Record<string, unknown> = {}, deps = {}) {
  return createTokenValidator(
    { issuers: [issuer(overrides)], allowInsecureLoopback: true, ...extra },
    { now: () => clock, ...deps },
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
  endpoint = new Endpoint();
  await endpoint.start();
});
after(() => endpoint.stop());
beforeEach(() => {
  endpoint.seen = [];
  clock = Date.now();
  endpoint.answer = (form) =>
    form.get('token')?.startsWith('good')
      ? { status: 200, body: activeBody() }
      : { status: 200, body: { active: false } };
});

describe('introspection', () => {
  test('an active token is accepted; the server authenticates with client_secret_basic', async () => {
    const token = await validator().validate('good-token-1', { user: 'alice@example.test' });
    assert.equal(token.user, 'alice@example.test');
    assert.equal(token.method, 'introspection');
    assert.equal(token.clientId, 'mail-client');
    assert.deepEqual(token.rights, { read: true, delete: true });
    assert.equal(endpoint.seen.length, 1);
    const seen = endpoint.seen[0]!;
    assert.equal(seen.form.get('token'), 'good-token-1');
    assert.equal(seen.form.get('token_type_hint'), 'access_token');
    assert.equal(seen.form.get('client_secret'), null);
    const decoded = Buffer.from(seen.authorization!.replace(/^Basic /, ''), 'base64').toString();
    const [id, secret] = decoded.split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    assert.deepEqual([id, secret], ['pop3-server', SECRET]);
  });

  test('client_secret_post sends the credentials in the form body', async () => {
    const v = validator({
      introspection: {
        endpoint: `${endpoint.url}/introspect`,
        clientId: 'pop3-server',
        clientSecret: SECRET,
        clientAuth: 'client_secret_post',
      },
    });
    await v.validate('good-post', { user: undefined });
    const seen = endpoint.seen[0]!;
    assert.equal(seen.authorization, undefined);
    assert.equal(seen.form.get('client_id'), 'pop3-server');
    assert.equal(seen.form.get('client_secret'), SECRET);
  });

  test('the introspection endpoint is found through discovery when not configured', async () => {
    const v = validator({ introspection: { clientId: 'pop3-server', clientSecret: SECRET } });
    await v.validate('good-discovered', { user: undefined });
    assert.equal(endpoint.seen.length, 1);
  });

  test('an inactive token is refused (not temporary)', async () => {
    const error = await refusal(validator().validate('revoked', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INACTIVE');
    assert.equal(error.temporary, false);
  });

  test('an active answer is cached: the second login does not call the endpoint', async () => {
    const events: AuthEvent[] = [];
    const v = validator({}, {}, { onEvent: (e: AuthEvent) => events.push(e) });
    await v.validate('good-cached', { user: undefined });
    await v.validate('good-cached', { user: undefined });
    assert.equal(endpoint.seen.length, 1);
    const validations = events.filter((e) => e.type === 'validation');
    assert.deepEqual(
      validations.map((e) => e.type === 'validation' && e.cache),
      ['miss', 'hit'],
    );
    assert.deepEqual(
      events.filter((e) => e.type === 'cache').map((e) => e.type === 'cache' && e.outcome),
      ['miss', 'hit'],
    );
  });

  test('the user check applies to cached answers too', async () => {
    const v = validator();
    await v.validate('good-user', { user: 'alice@example.test' });
    const error = await refusal(v.validate('good-user', { user: 'mallory@example.test' }));
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
  });

  test('a cached answer is not used past the configured TTL', async () => {
    const v = validator({}, { introspectionCache: { ttlSeconds: 60 } });
    await v.validate('good-ttl', { user: undefined });
    clock += 59_000;
    await v.validate('good-ttl', { user: undefined });
    assert.equal(endpoint.seen.length, 1);
    clock += 2_000;
    await v.validate('good-ttl', { user: undefined });
    assert.equal(endpoint.seen.length, 2);
  });

  test('a cached answer is not used past the token exp, even with a longer TTL', async () => {
    const exp = Math.floor(clock / 1000) + 10;
    endpoint.answer = () => ({ status: 200, body: activeBody({ exp }) });
    const v = validator({}, { introspectionCache: { ttlSeconds: 3600 }, clockToleranceSeconds: 0 });
    await v.validate('good-exp', { user: undefined });
    clock = exp * 1000 + 1;
    endpoint.answer = () => ({ status: 200, body: { active: false } });
    const error = await refusal(v.validate('good-exp', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INACTIVE');
    assert.equal(endpoint.seen.length, 2);
  });

  test('an inactive answer is cached briefly', async () => {
    const v = validator({}, { introspectionCache: { inactiveTtlSeconds: 30 } });
    await refusal(v.validate('bad', { user: undefined }));
    await refusal(v.validate('bad', { user: undefined }));
    assert.equal(endpoint.seen.length, 1);
    clock += 31_000;
    await refusal(v.validate('bad', { user: undefined }));
    assert.equal(endpoint.seen.length, 2);
  });

  test('the cache is bounded and evicts the least recently used answer', async () => {
    const v = validator({}, { introspectionCache: { maxEntries: 3 } });
    for (const name of ['good-a', 'good-b', 'good-c']) await v.validate(name, { user: undefined });
    await v.validate('good-a', { user: undefined }); // a is now most recent
    await v.validate('good-d', { user: undefined }); // evicts b
    assert.equal(v.introspectionCacheSize, 3);
    assert.equal(endpoint.seen.length, 4);
    await v.validate('good-a', { user: undefined });
    await v.validate('good-b', { user: undefined });
    assert.equal(endpoint.seen.length, 5);
    assert.equal(v.introspectionCacheSize, 3);
  });

  test('concurrent logins with the same token share one introspection request', async () => {
    const v = validator();
    await Promise.all(Array.from({ length: 5 }, () => v.validate('good-concurrent', { user: undefined })));
    assert.equal(endpoint.seen.length, 1);
  });

  test('an IdP error answer is ERR_AUTH_UNAVAILABLE, temporary, and not cached', async () => {
    endpoint.answer = () => ({ status: 503, body: { error: 'temporarily_unavailable' } });
    const v = validator();
    const error = await refusal(v.validate('good-outage', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    assert.equal(error.temporary, true);
    endpoint.answer = () => ({ status: 200, body: activeBody() });
    await v.validate('good-outage', { user: undefined });
    assert.equal(endpoint.seen.length, 2);
  });

  test('a connection reset and a timeout are ERR_AUTH_UNAVAILABLE', async () => {
    for (const answer of ['reset', 'hang'] as const) {
      endpoint.answer = () => answer;
      const error = await refusal(
        validator({}, { httpTimeoutMs: 300 }).validate(`good-${answer}`, { user: undefined }),
      );
      assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE', answer);
    }
  });

  test('an answer without a boolean active member is an outage, not a login', async () => {
    endpoint.answer = () => ({ status: 200, body: { active: 'true', username: 'alice@example.test' } });
    assert.equal(
      (await refusal(validator().validate('good-weird', { user: undefined }))).code,
      'ERR_AUTH_UNAVAILABLE',
    );
  });

  test('rejected introspection credentials are an outage with a logged hint, never the secret', async () => {
    endpoint.answer = () => ({ status: 401, body: { error: 'invalid_client' } });
    const lines: string[] = [];
    const capture = (fields: Record<string, unknown>, message?: string) =>
      lines.push(`${message} ${JSON.stringify(fields)}`);
    const logger: Logger = { debug: capture, info: capture, warn: capture, error: capture };
    const v = validator({}, {}, { logger });
    const error = await refusal(v.validate('good-secret-token-xyz', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    const visible = [
      ...lines,
      error.message,
      inspect(error),
      inspect(v.config, { depth: 6 }),
      JSON.stringify(v.config),
    ].join('\n');
    assert.match(visible, /credentials/);
    assert.ok(!visible.includes(SECRET));
    assert.ok(!visible.includes('good-secret-token-xyz'));
  });

  test('a token for another audience is refused', async () => {
    endpoint.answer = () => ({ status: 200, body: activeBody({ aud: 'urn:other' }) });
    assert.equal(
      (await refusal(validator().validate('good-aud', { user: undefined }))).code,
      'ERR_AUTH_AUDIENCE',
    );
  });

  test('an answer without aud is refused while the audience is required', async () => {
    const body = activeBody();
    delete (body as Record<string, unknown>).aud;
    endpoint.answer = () => ({ status: 200, body });
    assert.equal(
      (await refusal(validator().validate('good-noaud', { user: undefined }))).code,
      'ERR_AUTH_AUDIENCE',
    );
    await validator({ requireAudience: false }).validate('good-noaud', { user: undefined });
  });

  test('an answer from another issuer is refused', async () => {
    endpoint.answer = () => ({ status: 200, body: activeBody({ iss: 'https://elsewhere.example' }) });
    assert.equal(
      (await refusal(validator().validate('good-iss', { user: undefined }))).code,
      'ERR_AUTH_ISSUER',
    );
  });

  test('refresh and DPoP tokens are refused as not bearer access tokens', async () => {
    for (const tokenType of ['refresh_token', 'DPoP']) {
      endpoint.answer = () => ({ status: 200, body: activeBody({ token_type: tokenType }) });
      const error = await refusal(validator().validate(`good-${tokenType}`, { user: undefined }));
      assert.equal(error.code, 'ERR_AUTH_TYPE', tokenType);
    }
  });

  test('a token without the read scope is refused with the scope in the challenge', async () => {
    endpoint.answer = () => ({ status: 200, body: activeBody({ scope: 'openid' }) });
    const v = validator();
    const error = await refusal(v.validate('good-noscope', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_SCOPE');
    assert.deepEqual(v.challenge(error), {
      scope: 'pop3',
      openidConfiguration: `${endpoint.url}/.well-known/openid-configuration`,
    });
  });

  test('an opaque token with no introspection issuer configured is refused as invalid', async () => {
    const v = createTokenValidator({
      issuers: [{ issuer: 'https://idp.example', audience: 'a' }],
    });
    const error = await refusal(v.validate('opaque-token', { user: undefined }));
    assert.equal(error.code, 'ERR_AUTH_INVALID_TOKEN');
  });
});

// Issue 11 item 4: an opaque token is sent to exactly one introspection endpoint, chosen before
// anything is sent, never offered to each in turn (which would show B's tokens to A).
describe('several introspection issuers: an opaque token goes to exactly one', () => {
  let second: Endpoint;
  before(async () => {
    second = new Endpoint();
    await second.start();
  });
  after(() => second.stop());
  beforeEach(() => {
    second.seen = [];
    endpoint.answer = () => ({ status: 200, body: activeBody({ username: 'alice@a.test' }) });
    second.answer = () => ({
      status: 200,
      body: { ...activeBody(), iss: second.url, username: 'carol@b.test' },
    });
  });

  function two(a: Partial<IssuerOptions> = {}, b: Partial<IssuerOptions> = {}) {
    return createTokenValidator(
      {
        issuers: [
          issuer({ domains: 'a.test', ...a }),
          issuer({
            issuer: second.url,
            introspection: { endpoint: `${second.url}/introspect`, clientId: 'x', clientSecret: 'y' },
            domains: 'b.test',
            ...b,
          }),
        ],
        allowInsecureLoopback: true,
      },
      { now: () => clock },
    );
  }

  test('the SASL user domain picks the issuer; the other endpoint sees no request', async () => {
    const v = two();
    const carol = await v.validate('opaque-b', { user: 'carol@b.test' });
    assert.equal(carol.issuer, second.url);
    assert.deepEqual([endpoint.seen.length, second.seen.length], [0, 1]);
    const alice = await v.validate('opaque-a', { user: 'Alice@A.test' });
    assert.equal(alice.issuer, endpoint.url);
    assert.deepEqual([endpoint.seen.length, second.seen.length], [1, 1]);
  });

  test("an inactive answer from the login domain's issuer is final: the other is never asked", async () => {
    endpoint.answer = () => ({ status: 200, body: { active: false } });
    const error = await refusal(two().validate('opaque-b', { user: 'alice@a.test' }));
    assert.equal(error.code, 'ERR_AUTH_INACTIVE');
    assert.deepEqual([endpoint.seen.length, second.seen.length], [1, 0]);
  });

  test('without a domain in the SASL user the token is refused and sent nowhere', async () => {
    const v = two();
    for (const user of [undefined, 'carol', 'carol@c.test']) {
      const error = await refusal(v.validate('opaque-x', { user }));
      assert.equal(error.code, 'ERR_AUTH_ISSUER', String(user));
    }
    assert.deepEqual([endpoint.seen.length, second.seen.length], [0, 0]);
  });

  test('a token prefix picks its issuer, whatever the login name says', async () => {
    const v = two({}, { tokenPrefixes: ['bx_'] });
    assert.equal((await v.validate('bx_opaque', { user: 'carol@b.test' })).issuer, second.url);
    // B's token with A's login name: asked at B only, then refused as another user's token.
    const error = await refusal(v.validate('bx_other', { user: 'alice@a.test' }));
    assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
    // A token of B's domain without B's prefix is not B's: refused, sent nowhere.
    assert.equal((await refusal(v.validate('plain', { user: 'carol@b.test' }))).code, 'ERR_AUTH_ISSUER');
    assert.deepEqual([endpoint.seen.length, second.seen.length], [0, 2]);
  });

  test('an outage at the chosen issuer is [SYS/TEMP], and the other is not tried instead', async () => {
    second.answer = () => ({ status: 503, body: {} });
    const error = await refusal(two().validate('opaque-b', { user: 'carol@b.test' }));
    assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
    assert.equal(error.temporary, true);
    assert.deepEqual([endpoint.seen.length, second.seen.length], [0, 1]);
  });
});
