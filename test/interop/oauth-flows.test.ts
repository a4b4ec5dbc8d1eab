// Every flow against a real authorization server (oidc-provider on loopback), the browser flow
// through Debian's headless Chromium, and https with a throwaway CA.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { createDevCa } from '../../dev/certs.ts';
import { isPopgateError } from '../../src/errors.ts';
import { resolveAccount } from '../../src/oauth/account.ts';
import { browserFlow } from '../../src/oauth/flows/browser.ts';
import { clientCredentialsFlow } from '../../src/oauth/flows/client-credentials.ts';
import { deviceFlow } from '../../src/oauth/flows/device.ts';
import { refreshFlow } from '../../src/oauth/flows/refresh.ts';
import {
  type AuthorizationServer,
  deviceLogin,
  nativeAccount,
  quickSleep,
  startTestAuthorizationServer,
} from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';

let as: AuthorizationServer;
before(async () => {
  as = await startTestAuthorizationServer();
});
after(async () => {
  await as.stop();
});

describe('device authorization grant (RFC 8628)', () => {
  test('approved through the provider pages, it yields a JWT access token for POP3 and a refresh token', async () => {
    const account = await nativeAccount(as);
    const tokens = await deviceLogin(as, account, 'alice@example.test');
    const claims = decodeJwt(tokens.accessToken);
    assert.equal(claims.aud, as.pop3Audience);
    assert.equal(claims.sub, 'alice@example.test');
    assert.equal(claims.email, 'alice@example.test');
    assert.equal(claims.iss, as.issuer);
    assert.match(String(claims.scope), /pop3/);
    assert.equal(typeof tokens.refreshToken, 'string');
    assert.ok(tokens.expiresAt !== undefined && tokens.expiresAt > Date.now());
  });

  test('a user who aborts on the provider page gets ERR_OAUTH_ACCESS_DENIED', async () => {
    const account = await nativeAccount(as);
    let denial: Promise<void> = Promise.resolve();
    await assert.rejects(
      deviceFlow(account, {
        sleep: quickSleep,
        onPrompt: (prompt) => {
          denial = as.denyDevice(prompt.userCode);
        },
      }),
      (e) => isPopgateError(e, 'ERR_OAUTH_ACCESS_DENIED'),
    );
    await denial;
  });

  test('an unapproved code runs out as ERR_OAUTH_EXPIRED', async () => {
    const short = await startTestAuthorizationServer({ deviceCodeTtl: 1 });
    try {
      const account = await nativeAccount(short);
      await assert.rejects(
        deviceFlow(account, { sleep: (_ms, signal) => quickSleep(300, signal), onPrompt: () => {} }),
        (e) => isPopgateError(e, 'ERR_OAUTH_EXPIRED'),
      );
    } finally {
      await short.stop();
    }
  });

  test('the prompt the user sees carries the user code, never the device code', async () => {
    const account = await nativeAccount(as);
    let shown = '';
    await deviceFlow(account, {
      sleep: quickSleep,
      onPrompt: async (prompt) => {
        shown = JSON.stringify(prompt);
        await as.approveDevice(prompt.userCode, 'bob@example.test');
      },
    });
    assert.deepEqual(Object.keys(JSON.parse(shown)).sort(), [
      'expiresIn',
      'userCode',
      'verificationUri',
      'verificationUriComplete',
    ]);
  });
});

describe('refresh with rotation', () => {
  test('a refresh returns a new refresh token and the replayed old one kills the grant', async () => {
    const account = await nativeAccount(as);
    const first = await deviceLogin(as, account);
    const second = await refreshFlow(account, first.refreshToken as string, first.scopes);
    assert.notEqual(second.refreshToken, first.refreshToken);
    await assert.rejects(refreshFlow(account, first.refreshToken as string, first.scopes), (e) =>
      isPopgateError(e, 'ERR_OAUTH_REAUTH_REQUIRED'),
    );
    // Reuse detection revoked the whole grant: the rotated token is dead too.
    await assert.rejects(refreshFlow(account, second.refreshToken as string, second.scopes), (e) =>
      isPopgateError(e, 'ERR_OAUTH_REAUTH_REQUIRED'),
    );
  });
});

describe('client credentials', () => {
  test('client_secret_basic yields an app-only token without a refresh token', async () => {
    const account = await resolveAccount({
      name: 'app',
      issuer: as.issuer,
      clientId: as.clients.secretBasic.clientId,
      clientAuth: { method: 'client_secret_basic', secret: as.clients.secretBasic.clientSecret },
      scopes: ['pop3'],
      flow: 'client-credentials',
      http: { allowInsecureHttp: true },
    });
    const tokens = await clientCredentialsFlow(account);
    assert.equal(decodeJwt(tokens.accessToken).aud, as.pop3Audience);
    assert.equal(tokens.refreshToken, undefined);
  });

  test('private_key_jwt yields an app-only token', async () => {
    const account = await resolveAccount({
      name: 'app-jwt',
      issuer: as.issuer,
      clientId: as.clients.privateKeyJwt.clientId,
      clientAuth: {
        method: 'private_key_jwt',
        key: as.clients.privateKeyJwt.privateKey,
        kid: as.clients.privateKeyJwt.kid,
      },
      scopes: ['pop3'],
      flow: 'client-credentials',
      http: { allowInsecureHttp: true },
    });
    const tokens = await clientCredentialsFlow(account);
    assert.equal(decodeJwt(tokens.accessToken).client_id, as.clients.privateKeyJwt.clientId);
  });

  test('a wrong client secret is ERR_OAUTH_INVALID_CLIENT and the secret is not in the message', async () => {
    const secret = 'not-the-secret-0123456789';
    const account = await resolveAccount({
      name: 'app',
      issuer: as.issuer,
      clientId: as.clients.secretBasic.clientId,
      clientAuth: { method: 'client_secret_basic', secret },
      scopes: ['pop3'],
      flow: 'client-credentials',
      http: { allowInsecureHttp: true },
    });
    await assert.rejects(
      clientCredentialsFlow(account),
      (e) => isPopgateError(e, 'ERR_OAUTH_INVALID_CLIENT') && !(e as Error).message.includes(secret),
    );
  });

  test('a scope the client may not ask for is ERR_OAUTH_INVALID_SCOPE', async () => {
    const account = await resolveAccount({
      name: 'app',
      issuer: as.issuer,
      clientId: as.clients.secretBasic.clientId,
      clientAuth: { method: 'client_secret_basic', secret: as.clients.secretBasic.clientSecret },
      scopes: ['pop3', 'openid'],
      flow: 'client-credentials',
      http: { allowInsecureHttp: true },
    });
    await assert.rejects(clientCredentialsFlow(account), (e) => isPopgateError(e, 'ERR_OAUTH_INVALID_SCOPE'));
  });
});

describe('discovery and transport', () => {
  test('discovery over plain http is refused without the explicit flag', async () => {
    await assert.rejects(resolveAccount({ name: 'x', issuer: as.issuer, clientId: 'popgate-native' }), (e) =>
      isPopgateError(e, 'ERR_OAUTH_INSECURE_ENDPOINT'),
    );
  });

  test('https with a private CA works when the CA is given and fails closed when it is not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'popgate-oauth-ca-'));
    const ca = await createDevCa(dir);
    const cert = await ca.issue('authorization-server');
    const secure = await startTestAuthorizationServer({
      tls: { cert: cert.certPem, key: cert.keyPem, ca: ca.caCertPem },
    });
    try {
      assert.ok(secure.issuer.startsWith('https://'));
      await assert.rejects(
        resolveAccount({ name: 'tls', issuer: secure.issuer, clientId: secure.clients.native.clientId }),
        // A certificate that does not verify is a configuration fault with its fix, not "try again".
        (e) =>
          isPopgateError(e, 'ERR_OAUTH_TLS_UNTRUSTED') &&
          /not trusted: for a private CA, set ca/.test(e.message),
      );
      const account = await resolveAccount({
        name: 'tls',
        issuer: secure.issuer,
        clientId: secure.clients.native.clientId,
        scopes: ['pop3', 'offline_access'],
        http: { ca: ca.caCertPem },
      });
      const tokens = await deviceLogin(secure, account);
      const again = await refreshFlow(account, tokens.refreshToken as string, tokens.scopes);
      assert.equal(decodeJwt(again.accessToken).aud, secure.pop3Audience);
    } finally {
      await secure.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('after a key rotation new tokens carry the new kid and the JWKS publishes both keys', async () => {
    const server = await startTestAuthorizationServer();
    try {
      const account = await nativeAccount(server);
      const before = await deviceLogin(server, account);
      const oldKid = decodeProtectedHeader(before.accessToken).kid;
      const newKid = await server.rotateKeys();
      const afterRotation = await refreshFlow(account, before.refreshToken as string, before.scopes);
      assert.equal(decodeProtectedHeader(afterRotation.accessToken).kid, newKid);
      const jwks = (await (await fetch(server.jwksUri)).json()) as { keys: { kid: string }[] };
      const kids = jwks.keys.map((key) => key.kid);
      assert.ok(kids.includes(String(oldKid)) && kids.includes(newKid));
    } finally {
      await server.stop();
    }
  });
});

describe('authorization code + PKCE in headless Chromium', () => {
  test('login and consent pages clicked through land on the loopback listener with tokens', async (t) => {
    const chromiumPath = requirePeer(t, 'chromium');
    if (!chromiumPath) return;
    const { chromium } = await import('playwright-core');
    const userDataDir = await mkdtemp(join(tmpdir(), 'popgate-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const account = await nativeAccount(as, 'browser', { flow: 'browser' });
      const page = await context.newPage();
      let landed = '';
      let authorizationUrl = '';
      const tokens = await browserFlow(account, {
        timeoutMs: 60_000,
        onAuthorizationUrl: async (url) => {
          authorizationUrl = url;
          // Drive the browser in the background; the flow resolves when the redirect arrives.
          void (async () => {
            await page.goto(url);
            await page.fill('#login', 'carol@example.test');
            await page.click('#submit');
            await page.waitForSelector('#allow');
            await page.click('#allow');
            await page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
            landed = (await page.textContent('body')) ?? '';
          })().catch(() => {});
        },
      });
      const parsed = new URL(authorizationUrl);
      assert.equal(parsed.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(parsed.searchParams.get('state'));
      assert.match(parsed.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      assert.equal(decodeJwt(tokens.accessToken).sub, 'carol@example.test');
      assert.equal(typeof tokens.refreshToken, 'string');
      await page.waitForSelector('text=Login succeeded', { timeout: 10_000 }).catch(() => {});
      landed = (await page.textContent('body')) ?? landed;
      assert.match(landed, /Login succeeded/);
    } finally {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    }
  });

  test('a pasted redirect with a forged state is refused as ERR_OAUTH_STATE_MISMATCH', async () => {
    const account = await nativeAccount(as, 'browser', { flow: 'browser' });
    let resolvePaste: (text: string) => void = () => {};
    const pasted = new Promise<string>((resolve) => {
      resolvePaste = resolve;
    });
    await assert.rejects(
      browserFlow(account, {
        pastedRedirect: pasted,
        onAuthorizationUrl: (url) => {
          const redirect = new URL(url).searchParams.get('redirect_uri');
          resolvePaste(`${redirect}?code=abc&state=forged&iss=${encodeURIComponent(as.issuer)}`);
        },
      }),
      (e) => isPopgateError(e, 'ERR_OAUTH_STATE_MISMATCH'),
    );
  });

  test('a pasted redirect from another issuer is refused (RFC 9207)', async () => {
    const account = await nativeAccount(as, 'browser', { flow: 'browser' });
    let resolvePaste: (text: string) => void = () => {};
    const pasted = new Promise<string>((resolve) => {
      resolvePaste = resolve;
    });
    await assert.rejects(
      browserFlow(account, {
        pastedRedirect: pasted,
        onAuthorizationUrl: (url) => {
          const params = new URL(url).searchParams;
          resolvePaste(
            `${params.get('redirect_uri')}?code=abc&state=${params.get('state')}&iss=${encodeURIComponent('https://evil.example')}`,
          );
        },
      }),
      (e) => isPopgateError(e, 'ERR_OAUTH_STATE_MISMATCH'),
    );
  });
});
