/**
 * A real OAuth 2.0 authorization server for tests and the `npm start` demo: oidc-provider (a
 * dev dependency, loaded on demand) on 127.0.0.1, port 0, plain http or TLS with a given
 * certificate. Never for production: accounts are whoever types a name on the login page.
 *
 * What it offers (configuration.ts; CONTRIBUTING.md "Real peers" says why):
 * - a native public client (device flow, authorization code + PKCE S256, loopback redirect
 *   `http://127.0.0.1/callback` on any port), refresh tokens with rotation (reuse revokes the
 *   grant), issued with `offline_access` and no `prompt=consent`;
 * - confidential clients for client credentials (client_secret_basic and private_key_jwt) and an
 *   introspection client for resource servers;
 * - JWT access tokens for the POP3 resource (audience `pop3://localhost`, scope `pop3`) and opaque
 *   ones for a second resource (introspectable); revocation, introspection, `iss` in
 *   authorization responses (RFC 9207), a JWKS with {@link AuthorizationServer.rotateKeys};
 * - login and consent pages a headless browser can click through (pages.ts, interactions.ts), and
 *   {@link AuthorizationServer.approveDevice} to approve a user code through the provider's pages
 *   (device-agent.ts).
 *
 * @example
 * ```ts
 * const as = await startAuthorizationServer({ accessTokenTtl: 60 });
 * // ... as.issuer, as.clients.native.clientId, await as.approveDevice(userCode, 'alice@example.test')
 * await as.stop();
 * ```
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createOAuthFetch } from '../../src/oauth/http.ts';
import { recordTestSecret } from '../secret-ledger.ts';
import { memoryAdapterFactory } from './adapter.ts';
import { type ProviderSettings, providerConfiguration } from './configuration.ts';
import { decideDeviceCode } from './device-agent.ts';
import { handleInteraction } from './interactions.ts';
import { recordIssuedSecrets } from './issued-secrets.ts';
import { newSigningKey, type SigningKey } from './signing-keys.ts';
import type {
  AuthorizationServer,
  AuthorizationServerOptions,
  OidcProvider,
  ProviderConstructor,
} from './types.ts';

/** Starts the server; resolves once it listens. */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions = {},
): Promise<AuthorizationServer> {
  const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderConstructor };
  const host = options.host ?? '127.0.0.1';

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503).end();
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => handler(req, res))
    : createHttpServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `${options.tls ? 'https' : 'http'}://${host}:${port}`;

  const secretBasic = { clientId: 'popgate-app', clientSecret: randomBytes(24).toString('base64url') };
  const introspector = {
    clientId: 'popgate-pop3-server',
    clientSecret: randomBytes(24).toString('base64url'),
  };
  const jwtClientKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwtClientKid = randomUUID();
  const privateKey = await crypto.subtle.importKey(
    'pkcs8',
    jwtClientKeys.privateKey.export({ type: 'pkcs8', format: 'der' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const cookieKeys = [randomBytes(32).toString('base64url')];
  for (const secret of [secretBasic.clientSecret, introspector.clientSecret, ...cookieKeys]) {
    recordTestSecret(secret);
  }
  const settings: ProviderSettings = {
    adapter: memoryAdapterFactory(),
    nativeClientId: 'popgate-native',
    secretBasic,
    privateKeyJwt: {
      clientId: 'popgate-app-jwt',
      publicJwk: jwtClientKeys.publicKey.export({ format: 'jwk' }),
      kid: jwtClientKid,
    },
    introspector,
    cookieKeys,
    pop3Audience: options.pop3Audience ?? 'pop3://localhost',
    opaqueAudience: options.opaqueAudience ?? 'pop3-opaque://localhost',
    accessTokenTtl: options.accessTokenTtl ?? 300,
    refreshTokenTtl: options.refreshTokenTtl,
    deviceCodeTtl: options.deviceCodeTtl,
    accessTokenTyp: options.accessTokenTyp,
    claimsFor: options.accessTokenClaims ?? ((accountId: string) => ({ email: accountId })),
  };
  let signingKeys: SigningKey[] = [newSigningKey()];
  const grants: Record<string, number> = {};
  const errors: Record<string, number> = {};

  const build = (): { provider: OidcProvider; callback: ReturnType<OidcProvider['callback']> } => {
    const provider = new Provider(
      issuer,
      providerConfiguration(
        settings,
        signingKeys.map((key) => key.jwk),
      ),
    );
    provider.use(recordIssuedSecrets);
    provider.on('grant.success', (ctx) => {
      const type = String(
        (ctx as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type ?? 'unknown',
      );
      grants[type] = (grants[type] ?? 0) + 1;
    });
    provider.on('grant.error', (_ctx, error) => {
      const name = String((error as { error?: unknown }).error ?? 'unknown');
      errors[name] = (errors[name] ?? 0) + 1;
    });
    return { provider, callback: provider.callback() };
  };
  let current = build();

  const requests: Record<string, number> = {};
  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests[path] = (requests[path] ?? 0) + 1;
    if (path.startsWith('/interaction/')) {
      handleInteraction(current.provider, req, res, path).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('interaction failed');
      });
      return;
    }
    current.callback(req, res);
  };

  const agentFetch = createOAuthFetch(options.tls ? { ca: options.tls.ca ?? options.tls.cert } : {});

  return {
    issuer,
    url: issuer,
    jwksUri: `${issuer}/jwks`,
    pop3Audience: settings.pop3Audience,
    opaqueAudience: settings.opaqueAudience,
    clients: {
      native: { clientId: settings.nativeClientId },
      secretBasic,
      privateKeyJwt: { clientId: settings.privateKeyJwt.clientId, privateKey, kid: jwtClientKid },
      introspector,
    },
    get provider() {
      return current.provider;
    },
    grantCounts: () => ({ ...grants }),
    errorCounts: () => ({ ...errors }),
    requestCount: (path) => requests[path] ?? 0,
    publicKeys: () => signingKeys.map((key) => ({ kid: key.jwk.kid, alg: key.jwk.alg, pem: key.pem })),
    rotateKeys: async () => {
      signingKeys = [newSigningKey(), ...signingKeys].slice(0, 3);
      current = build();
      return signingKeys[0]?.jwk.kid ?? '';
    },
    approveDevice: (userCode, accountId) =>
      decideDeviceCode(issuer, agentFetch, userCode, { decide: 'approve', accountId }),
    denyDevice: (userCode) => decideDeviceCode(issuer, agentFetch, userCode, { decide: 'deny' }),
    stop: async () => {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
