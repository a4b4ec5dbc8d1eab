// popgate's validator beside Dovecot 2.3's oauth2 passdb (the reference), on the same tokens signed
// by the same key: where Dovecot is lax, popgate refuses; where Dovecot cannot follow RFC 9068
// or a key rotation, popgate accepts. Dovecot's verdict is observed through real curl logins
// (exit 0 = logged in, 67 = login denied); popgate's through the validator with the same key
// published as a JWKS on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { JWK } from 'jose';
import { createSigningKey } from '../../dev/jwt-keys.ts';
import { createTokenValidator, type PopgateTokenValidator } from '../../src/auth/index.ts';
import { TokenValidationError } from '../../src/errors.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';

const USER = 'alice@example.test';
const AUDIENCE = 'pop3.example.test';
let dovecot: DovecotInstance | undefined;
let jwksServer: Server | undefined;
let published: JWK[] = [];
let jwksUrl = '';

function curlLogin(token: string): Promise<number> {
  const d = dovecot!;
  return new Promise((resolve) => {
    execFile(
      'curl',
      [
        '-sS',
        '--max-time',
        '20',
        '--oauth2-bearer',
        token,
        '-u',
        `${USER}:`,
        '--cacert',
        d.caCertPath,
        `pop3s://${d.host}:${d.popsPort}/`,
      ],
      (error) => resolve(error ? (typeof error.code === 'number' ? error.code : -1) : 0),
    );
  });
}

function popgate(options: { typ?: string[] } = {}): PopgateTokenValidator {
  return createTokenValidator({
    issuers: [{ issuer: dovecot!.issuer, audience: AUDIENCE, jwksUrl, ...options }],
    allowInsecureLoopback: true,
    jwksCooldownSeconds: 0,
  });
}

async function popgateVerdict(v: PopgateTokenValidator, token: string): Promise<string> {
  try {
    await v.validate(token, { user: USER });
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof TokenValidationError, String(error));
    return error.code;
  }
}

before(async () => {
  if (!peerPath('dovecot') || !peerPath('curl')) return;
  // Dovecot as an operator would set it up from its docs: issuer restricted, no client_id, no scope.
  dovecot = await startDovecot({ users: [USER] });
  published = [dovecot.signingKey.publicJwk!];
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer!.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});
after(async () => {
  await dovecot?.stop();
  jwksServer?.closeAllConnections();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
});

test('a proper token (typ JWT, aud) is accepted by both', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const token = await dovecot!.mintToken(USER, { claims: { aud: AUDIENCE, scope: 'pop3' } });
  assert.equal(await curlLogin(token), 0);
  assert.equal(await popgateVerdict(popgate({ typ: ['JWT'] }), token), 'ok');
});

test('a token without aud: Dovecot logs in, popgate refuses', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const token = await dovecot!.mintToken(USER, { claims: { scope: 'pop3' } });
  assert.equal(await curlLogin(token), 0);
  assert.equal(await popgateVerdict(popgate({ typ: ['JWT'] }), token), 'ERR_AUTH_AUDIENCE');
});

test('a token for another audience: Dovecot logs in, popgate refuses', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const token = await dovecot!.mintToken(USER, { claims: { aud: 'some-other-api', scope: 'pop3' } });
  assert.equal(await curlLogin(token), 0);
  assert.equal(await popgateVerdict(popgate({ typ: ['JWT'] }), token), 'ERR_AUTH_AUDIENCE');
});

test('an ID token (Keycloak typ claim ID): Dovecot logs in, popgate refuses even with typ JWT allowed', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const token = await dovecot!.mintToken(USER, { claims: { aud: AUDIENCE, scope: 'pop3', typ: 'ID' } });
  assert.equal(await curlLogin(token), 0);
  assert.equal(await popgateVerdict(popgate({ typ: ['JWT'] }), token), 'ERR_AUTH_TYPE');
});

test('an RFC 9068 at+jwt access token: Dovecot refuses, popgate accepts by default', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const token = await dovecot!.mintToken(USER, { claims: { aud: AUDIENCE, scope: 'pop3' }, typ: 'at+jwt' });
  assert.equal(await curlLogin(token), 67);
  assert.equal(await popgateVerdict(popgate(), token), 'ok');
});

test('after the issuer rotates to a new key: Dovecot refuses until a key file is placed, popgate refetches and accepts', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const v = popgate({ typ: ['JWT'] });
  assert.equal(
    await popgateVerdict(v, await dovecot!.mintToken(USER, { claims: { aud: AUDIENCE, scope: 'pop3' } })),
    'ok',
  );
  const next = await createSigningKey({ alg: dovecot!.signingKey.alg });
  published = [next.publicJwk!, dovecot!.signingKey.publicJwk!]; // the IdP publishes its new key
  const token = await dovecot!.mintToken(USER, { claims: { aud: AUDIENCE, scope: 'pop3' }, signWith: next });
  assert.equal(await curlLogin(token), 67);
  assert.equal(await popgateVerdict(v, token), 'ok');
});
