// Property tests: whatever bytes a client sends as a token, the validator answers with a
// TokenValidationError (a refusal, never a crash, never an accidental login), and an attacker-
// shaped JWT naming a trusted issuer is refused without being mistaken for an outage.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { exportJWK, generateKeyPair } from 'jose';
import { createTokenValidator, type PopgateTokenValidator } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';

const ISSUER = 'https://idp.example.test';
let dir: string;
let validator: PopgateTokenValidator;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popgate-auth-prop-'));
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const file = join(dir, 'jwks.json');
  await writeFile(
    file,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
  );
  validator = createTokenValidator({ issuers: [{ issuer: ISSUER, audience: 'pop3', jwksFile: file }] });
});
after(() => rm(dir, { recursive: true, force: true }));

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

async function verdict(token: string, user?: string): Promise<TokenValidationError> {
  try {
    await validator.validate(token, { user });
  } catch (error) {
    assert.ok(error instanceof TokenValidationError, `not a TokenValidationError: ${String(error)}`);
    return error;
  }
  assert.fail('a random token was accepted');
}

test('any string is refused with a TokenValidationError', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.string({ maxLength: 300 }),
      fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
      async (token, user) => {
        const error = await verdict(token, user);
        assert.equal(error.temporary, false);
      },
    ),
    { numRuns: 300 },
  );
});

test('a JWT-shaped token with arbitrary header and claims naming the trusted issuer is refused, not an outage', async () => {
  const header = fc.record(
    {
      alg: fc.constantFrom('ES256', 'RS256', 'HS256', 'none', 'EdDSA', 'PS256'),
      kid: fc.constantFrom('k1', 'k2', ''),
      typ: fc.constantFrom('at+jwt', 'JWT', 'application/at+jwt'),
      crit: fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
    },
    { requiredKeys: ['alg'] },
  );
  const claims = fc.record({
    iss: fc.constant(ISSUER),
    aud: fc.oneof(fc.constant('pop3'), fc.string(), fc.array(fc.string())),
    exp: fc.oneof(fc.integer(), fc.double(), fc.string()),
    email: fc.oneof(fc.emailAddress(), fc.string()),
    scope: fc.oneof(fc.constant('pop3'), fc.string(), fc.array(fc.string())),
    extra: fc.jsonValue(),
  });
  await fc.assert(
    fc.asyncProperty(header, claims, fc.uint8Array({ maxLength: 80 }), async (h, c, signature) => {
      const token = `${b64(h)}.${b64(c)}.${Buffer.from(signature).toString('base64url')}`;
      const error = await verdict(token);
      assert.equal(error.temporary, false, error.code);
    }),
    { numRuns: 300 },
  );
});
