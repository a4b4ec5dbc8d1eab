// Options of the token validator: checked once, frozen, unknown or bad options named.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { createTokenValidator, resolveValidatorOptions } from '../../src/auth/index.ts';
import { ConfigError } from '../../src/errors.ts';

const base = { issuer: 'https://idp.example.com/realms/mail', audience: 'pop3' };

function configError(options: unknown): ConfigError {
  try {
    resolveValidatorOptions(options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('defaults are strict: audience required, typ at+jwt, no HMAC, read scope pop3', () => {
  const config = resolveValidatorOptions({ issuers: [base] });
  const issuer = config.issuers[0]!;
  assert.equal(issuer.method, 'jwt');
  assert.equal(issuer.requireAudience, true);
  assert.deepEqual(issuer.typ, ['at+jwt']);
  assert.equal(issuer.allowMissingTyp, false);
  assert.ok(!issuer.algorithms.some((alg: string) => alg.startsWith('HS') || alg === 'none'));
  assert.deepEqual(issuer.scopes, { read: ['pop3'], delete: ['pop3'] });
  assert.equal(issuer.userClaim, 'email');
  assert.equal(
    issuer.openidConfiguration,
    'https://idp.example.com/realms/mail/.well-known/openid-configuration',
  );
});

test('the configuration is frozen and the caller object is not kept', () => {
  const input = { issuers: [{ ...base, typ: ['JWT'] }] };
  const config = resolveValidatorOptions(input);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.issuers) && Object.isFrozen(config.issuers[0]));
  input.issuers[0]!.typ.push('anything');
  assert.deepEqual(config.issuers[0]!.typ, ['jwt']);
});

test('an unknown option fails naming it', () => {
  const top = configError({ issuers: [base], clockTolerance: 5 });
  assert.equal(top.code, 'ERR_CONFIG_UNKNOWN_KEY');
  assert.equal(top.key, 'clockTolerance');
  const nested = configError({ issuers: [{ ...base, audiance: 'x' }] });
  assert.equal(nested.key, 'issuers[0].audiance');
  assert.match(nested.message, /issuers\[0\]\.audiance/);
  assert.equal(
    configError({ issuers: [{ ...base, scopes: { write: 'x' } }] }).key,
    'issuers[0].scopes.write',
  );
});

test('a missing audience fails unless requireAudience is false', () => {
  const error = configError({ issuers: [{ issuer: base.issuer }] });
  assert.equal(error.code, 'ERR_CONFIG_MISSING');
  assert.equal(error.key, 'issuers[0].audience');
  resolveValidatorOptions({ issuers: [{ issuer: base.issuer, requireAudience: false }] });
});

test('HMAC and none cannot be allowed', () => {
  for (const alg of ['HS256', 'none']) {
    const error = configError({ issuers: [{ ...base, algorithms: ['RS256', alg] }] });
    assert.equal(error.key, 'issuers[0].algorithms[1]');
  }
});

test('http URLs are refused unless loopback with allowInsecureLoopback', () => {
  assert.equal(
    configError({ issuers: [{ ...base, issuer: 'http://idp.example.com' }] }).key,
    'issuers[0].issuer',
  );
  assert.equal(
    configError({ issuers: [{ ...base, issuer: 'http://idp.example.com' }], allowInsecureLoopback: true })
      .key,
    'issuers[0].issuer',
  );
  resolveValidatorOptions({
    issuers: [{ ...base, issuer: 'http://127.0.0.1:8080' }],
    allowInsecureLoopback: true,
  });
  assert.equal(
    configError({ issuers: [{ ...base, jwksUrl: 'http://127.0.0.1/jwks' }] }).key,
    'issuers[0].jwksUrl',
  );
});

test('options that do not fit the method are refused', () => {
  // A JWT issuer may also introspect its opaque tokens.
  resolveValidatorOptions({ issuers: [{ ...base, introspection: { clientId: 'a', clientSecret: 'b' } }] });
  assert.equal(
    configError({
      issuers: [
        {
          ...base,
          method: 'introspection',
          jwksUrl: 'https://x/jwks',
          introspection: { clientId: 'a', clientSecret: 'b' },
        },
      ],
    }).key,
    'issuers[0].jwksUrl',
  );
  assert.equal(
    configError({ issuers: [{ ...base, method: 'introspection' }] }).key,
    'issuers[0].introspection',
  );
  assert.equal(
    configError({ issuers: [{ ...base, jwksUrl: 'https://x/j', jwksFile: '/k.json' }] }).key,
    'issuers[0].jwksFile',
  );
  assert.equal(configError({ issuers: [{ ...base, jwksFile: 'relative.json' }] }).key, 'issuers[0].jwksFile');
});

test('the same issuer twice, an unknown user claim or a bad number fail naming the option', () => {
  assert.equal(configError({ issuers: [base, base] }).key, 'issuers[1].issuer');
  assert.equal(configError({ issuers: [{ ...base, userClaim: 'name' }] }).key, 'issuers[0].userClaim');
  assert.equal(configError({ issuers: [base], httpTimeoutMs: -1 }).key, 'httpTimeoutMs');
  assert.equal(configError({ issuers: [] }).key, 'issuers');
  assert.equal(configError({ issuers: [base], challengeIssuer: 'https://other' }).key, 'challengeIssuer');
});

test('the introspection client secret never prints', () => {
  const config = resolveValidatorOptions({
    issuers: [
      {
        ...base,
        method: 'introspection',
        introspection: { clientId: 'srv', clientSecret: 'hunter2-secret' },
      },
    ],
  });
  const printed = [
    JSON.stringify(config),
    inspect(config, { depth: 10 }),
    String(config.issuers[0]!.introspection!.clientSecret),
  ];
  for (const text of printed) assert.ok(!text.includes('hunter2-secret'), text);
  assert.equal(config.issuers[0]!.introspection!.clientSecret.reveal(), 'hunter2-secret');
});

test('challenge without a known issuer names the challenge issuer and its read scope', () => {
  const v = createTokenValidator({
    issuers: [
      { ...base, domains: 'example.com' },
      {
        issuer: 'https://login.example.org/v2.0',
        audience: 'api://pop',
        scopes: { read: 'POP.Read' },
        domains: 'example.org',
      },
    ],
    challengeIssuer: 'https://login.example.org/v2.0',
  });
  assert.deepEqual(v.challenge(new Error('x')), {
    scope: 'POP.Read',
    openidConfiguration: 'https://login.example.org/v2.0/.well-known/openid-configuration',
  });
});
