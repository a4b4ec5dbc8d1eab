// The validator against the project's own authorization server (dev/authorization-server/,
// oidc-provider 9): a user logs in through the device flow (RFC 8628) and the provider's own
// pages, and the POP3 server's validator checks the JWT access token for the POP3 resource, the
// opaque one for the second resource by introspection with the server's introspection client,
// and a token signed after the authorization server rotated its keys.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { type AuthorizationServer, startAuthorizationServer } from '../../dev/authorization-server/index.ts';
import { devValidatorIssuer } from '../../dev/validator-issuer.ts';
import { createTokenValidator, type PopgateTokenValidator } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';

const USER = 'alice@example.test';
let as: AuthorizationServer;

/** A user access token for `resource`, obtained through the device flow as `account`. */
async function deviceToken(resource: string, scope: string, account = USER): Promise<string> {
  const metadata = (await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    string
  >;
  const form = (fields: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const started = await fetch(
    metadata.device_authorization_endpoint!,
    form({ client_id: as.clients.native.clientId, scope, resource }),
  );
  const device = (await started.json()) as { device_code: string; user_code: string };
  assert.equal(started.status, 200, JSON.stringify(device));
  await as.approveDevice(device.user_code, account);
  const response = await fetch(
    metadata.token_endpoint!,
    form({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: device.device_code,
      client_id: as.clients.native.clientId,
      resource,
    }),
  );
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token as string;
}

function validator(extra: Record<string, unknown> = {}): PopgateTokenValidator {
  return createTokenValidator({
    issuers: [devValidatorIssuer(as)],
    allowInsecureLoopback: true,
    ...extra,
  });
}

before(async () => {
  as = await startAuthorizationServer({ accessTokenTtl: 300 });
});
after(() => as.stop());

test('a user JWT access token from the device flow is accepted for the POP3 resource', async () => {
  const jwt = await deviceToken(as.pop3Audience, 'openid pop3');
  assert.equal(decodeProtectedHeader(jwt).typ, 'at+jwt');
  const token = await validator().validate(jwt, { user: USER });
  assert.equal(token.user, USER);
  assert.equal(token.subject, USER);
  assert.equal(token.clientId, as.clients.native.clientId);
  assert.equal(token.method, 'jwt');
  assert.equal(token.rights.read, true);
});

test('another user cannot use that token', async () => {
  const jwt = await deviceToken(as.pop3Audience, 'openid pop3');
  const error = await validator()
    .validate(jwt, { user: 'bob@example.test' })
    .catch((e: unknown) => e);
  assert.ok(error instanceof TokenValidationError);
  assert.equal(error.code, 'ERR_AUTH_USER_MISMATCH');
});

test('a user opaque access token is introspected with the server introspection client', async () => {
  const opaque = await deviceToken(as.opaqueAudience, 'openid pop3');
  assert.ok(!opaque.includes('.'));
  const token = await validator().validate(opaque, { user: USER });
  assert.equal(token.method, 'introspection');
  assert.equal(token.user, USER);
});

test('after rotateKeys a token with the new kid is accepted after one JWKS refetch', async () => {
  const v = validator({ jwksCooldownSeconds: 0 });
  await v.validate(await deviceToken(as.pop3Audience, 'openid pop3'), { user: USER });
  const kid = await as.rotateKeys();
  const jwt = await deviceToken(as.pop3Audience, 'openid pop3');
  assert.equal(decodeProtectedHeader(jwt).kid, kid);
  assert.equal((await v.validate(jwt, { user: USER })).user, USER);
});
