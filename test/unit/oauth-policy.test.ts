// Endpoint policy, token response checks, Retry-After, skew and the provider presets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import { checkEndpoint, isLoopbackHost, parseRetryAfter } from '../../src/oauth/http.ts';
import { getPreset, PRESETS } from '../../src/oauth/providers/presets.ts';
import { MemoryTokenStore } from '../../src/oauth/stores/memory.ts';
import { defaultSkew, TokenManager } from '../../src/oauth/token-manager.ts';
import { toTokenSet } from '../../src/oauth/token-set.ts';

describe('endpoint policy', () => {
  test('https endpoints pass', () => {
    assert.equal(checkEndpoint('https://login.example/token', 'token endpoint').hostname, 'login.example');
  });

  test('plain http to a remote host is refused even with the flag', () => {
    assert.throws(
      () => checkEndpoint('http://login.example/token', 'token endpoint', { allowInsecureHttp: true }),
      (e) => isPopgateError(e, 'ERR_OAUTH_INSECURE_ENDPOINT'),
    );
  });

  test('plain http to loopback needs the explicit flag', () => {
    assert.throws(
      () => checkEndpoint('http://127.0.0.1:8080/token', 'token endpoint'),
      (e) =>
        isPopgateError(e, 'ERR_OAUTH_INSECURE_ENDPOINT') && /allow_insecure_http/.test((e as Error).message),
    );
    assert.ok(checkEndpoint('http://127.0.0.1:8080/token', 'token endpoint', { allowInsecureHttp: true }));
    assert.ok(checkEndpoint('http://[::1]:8080/token', 'token endpoint', { allowInsecureHttp: true }));
  });

  test('credentials in an endpoint URL are refused', () => {
    assert.throws(
      () => checkEndpoint('https://u:p@login.example/token', 'token endpoint'),
      (e) => isPopgateError(e, 'ERR_OAUTH_INSECURE_ENDPOINT'),
    );
  });

  test('loopback detection covers 127/8, ::1 and localhost only', () => {
    assert.ok(isLoopbackHost('127.0.0.1'));
    assert.ok(isLoopbackHost('127.8.9.10'));
    assert.ok(isLoopbackHost('[::1]'));
    assert.ok(isLoopbackHost('localhost'));
    assert.ok(!isLoopbackHost('128.0.0.1'));
    assert.ok(!isLoopbackHost('localhost.example.com'));
  });
});

describe('token response checks', () => {
  const good = {
    access_token: 'abc.DEF-123_~+/=',
    token_type: 'Bearer',
    expires_in: 3600,
    refresh_token: 'r1',
    scope: 'pop3 offline_access',
  };

  test('a good response becomes a token set with an absolute expiry', () => {
    const tokens = toTokenSet(good, ['x'], 1_000);
    assert.equal(tokens.expiresAt, 1_000 + 3_600_000);
    assert.deepEqual(tokens.scopes, ['pop3', 'offline_access']);
    assert.equal(tokens.refreshToken, 'r1');
  });

  test('an omitted scope means the requested scopes (RFC 6749 §5.1)', () => {
    const { scope: _, ...rest } = good;
    assert.deepEqual(toTokenSet(rest, ['pop3'], 0).scopes, ['pop3']);
  });

  for (const [field, value] of [
    ['access_token', 42],
    ['access_token', ''],
    ['access_token', 'has space'],
    ['access_token', 'line\r\nbreak'],
    ['token_type', 'DPoP'],
    ['token_type', 7],
    ['expires_in', '3600'],
    ['expires_in', -1],
    ['refresh_token', 5],
    ['refresh_token', 'a\nb'],
    ['scope', ['pop3']],
  ] as const) {
    test(`a response with ${field} = ${JSON.stringify(value)} is refused and the error names the field`, () => {
      assert.throws(
        () => toTokenSet({ ...good, [field]: value }, [], 0),
        (e) =>
          isPopgateError(e, 'ERR_OAUTH_RESPONSE') &&
          (e as Error).message.includes(field) &&
          (String(value) === '' || !(e as Error).message.includes(String(value))),
      );
    });
  }
});

describe('Retry-After', () => {
  test('delta seconds and HTTP dates are understood', () => {
    assert.equal(parseRetryAfter('7', 0), 7);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 0), 10);
    assert.equal(parseRetryAfter(null, 0), undefined);
    assert.equal(parseRetryAfter('soon', 0), undefined);
  });
});

describe('refresh skew', () => {
  test('the default is the larger of 5 minutes and 10 % of the lifetime', () => {
    assert.equal(defaultSkew(3_600_000), 360_000);
    assert.equal(defaultSkew(1_800_000), 300_000);
  });

  test('a short-lived token is refreshed no earlier than half its lifetime', () => {
    assert.equal(defaultSkew(120_000), 60_000);
  });

  test('with a frozen clock a token is fresh until the skew window opens', () => {
    let now = 0;
    const manager = new TokenManager({ store: new MemoryTokenStore(), clock: () => now });
    const tokens = {
      version: 1 as const,
      accessToken: 'a',
      refreshToken: 'r',
      expiresAt: 3_600_000,
      obtainedAt: 0,
      scopes: [],
      stale: false,
    };
    now = 3_600_000 - 360_001;
    assert.equal(manager.needsRefresh(tokens), false);
    now = 3_600_000 - 360_000;
    assert.equal(manager.needsRefresh(tokens), true);
  });
});

describe('provider presets', () => {
  test('every preset names endpoints or an issuer, minimal scopes, flows, a mechanism and a POP3 host', () => {
    for (const preset of Object.values(PRESETS)) {
      assert.ok(preset.issuer || preset.endpoints?.token, preset.id);
      assert.ok(preset.scopes.length > 0 && preset.scopes.length <= 2, preset.id);
      assert.ok(preset.flows.length > 0, preset.id);
      assert.ok(['XOAUTH2', 'OAUTHBEARER'].includes(preset.mechanism), preset.id);
      assert.ok(preset.pop3.host && preset.pop3.port === 995, preset.id);
      for (const url of Object.values(preset.endpoints ?? {})) assert.ok(url.startsWith('https://'), url);
    }
  });

  test('Google is browser-only, Microsoft has no revocation endpoint but says how to withdraw consent', () => {
    assert.deepEqual([...PRESETS.google.flows], ['browser']);
    assert.equal(PRESETS.microsoft.endpoints?.revocation, undefined);
    assert.match(PRESETS.microsoft.consentWithdrawal ?? '', /myapps\.microsoft\.com/);
    assert.equal(PRESETS.microsoft.mechanism, 'XOAUTH2');
  });

  test('an unknown provider is a typed error', () => {
    assert.throws(
      () => getPreset('yahoo'),
      (e) => isPopgateError(e, 'ERR_OAUTH_PROVIDER_UNKNOWN'),
    );
    assert.equal(getPreset('custom'), undefined);
  });
});
