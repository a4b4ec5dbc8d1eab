/**
 * A real OAuth 2.0 authorization server for tests and the `npm start` demo: oidc-provider (a
 * dev dependency, loaded on demand) on 127.0.0.1, port 0, plain http or TLS with a given
 * certificate. Never for production: accounts are whoever types a name on the login page.
 *
 * What it offers (see TOOLCHAIN.md for why each setting matters):
 * - a native public client (device flow, authorization code + PKCE S256, loopback redirect
 *   `http://127.0.0.1/callback` on any port), refresh tokens with rotation (reuse revokes the
 *   grant), issued with `offline_access` and no `prompt=consent`;
 * - confidential clients for client credentials (client_secret_basic and private_key_jwt) and an
 *   introspection client for resource servers;
 * - JWT access tokens for the POP3 resource (audience `pop3://localhost`, scope `pop3`) and opaque
 *   ones for a second resource (introspectable); revocation, introspection, `iss` in
 *   authorization responses (RFC 9207), a JWKS with {@link AuthorizationServer.rotateKeys};
 * - login and consent pages a headless browser can click through, and
 *   {@link AuthorizationServer.approveDevice} to approve a user code through the provider's pages.
 *
 * @example
 * ```ts
 * const as = await startAuthorizationServer({ accessTokenTtl: 60 });
 * // ... as.issuer, as.clients.native.clientId, await as.approveDevice(userCode, 'alice@example.test')
 * await as.stop();
 * ```
 */
import { createPublicKey, generateKeyPairSync, type JsonWebKey, randomBytes, randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createOAuthFetch, type OAuthFetch } from '../../src/oauth/http.ts';
import { recordTestSecret } from '../secret-ledger.ts';

export interface AuthorizationServerOptions {
  /** Serve https with this certificate and key (PEM); plain http when absent. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string };
  /** Access token lifetime in seconds. Default 300. */
  readonly accessTokenTtl?: number;
  /** Refresh token lifetime in seconds. Default 86 400. */
  readonly refreshTokenTtl?: number;
  /** Device code lifetime in seconds. Default 600. */
  readonly deviceCodeTtl?: number;
  /** Audience of the JWT access tokens. Default `pop3://localhost`. */
  readonly pop3Audience?: string;
  /** Audience of the opaque (introspectable) access tokens. Default `pop3-opaque://localhost`. */
  readonly opaqueAudience?: string;
  /**
   * `typ` header of JWT access tokens. Default `at+jwt` (RFC 9068); Dovecot 2.3 accepts only
   * `JWT`, so a test against Dovecot sets `JWT`.
   */
  readonly accessTokenTyp?: 'at+jwt' | 'JWT';
  /** Extra claims for access tokens and introspection. Default `{ email: accountId }`. */
  readonly accessTokenClaims?: (accountId: string) => Record<string, unknown>;
  /** Bind address. Default 127.0.0.1. */
  readonly host?: string;
}

export interface ClientInfo {
  readonly clientId: string;
  /** Client secret (confidential clients). Test-only secret: still never log it. */
  readonly clientSecret?: string;
}

export interface AuthorizationServer {
  readonly issuer: string;
  /** Same as issuer (the base URL). */
  readonly url: string;
  readonly jwksUri: string;
  readonly pop3Audience: string;
  readonly opaqueAudience: string;
  readonly clients: {
    /** Public native client: device flow, authorization code + PKCE, refresh tokens. */
    readonly native: ClientInfo;
    /** Confidential client, client_secret_basic, client credentials. */
    readonly secretBasic: ClientInfo & { readonly clientSecret: string };
    /** Confidential client, private_key_jwt (ES256), client credentials. */
    readonly privateKeyJwt: ClientInfo & {
      readonly privateKey: import('node:crypto').webcrypto.CryptoKey;
      readonly kid: string;
    };
    /** Resource-server client allowed to introspect any token (client_secret_basic). */
    readonly introspector: ClientInfo & { readonly clientSecret: string };
  };
  /** The oidc-provider instance (tests look tokens up in it; e.g. `provider.RefreshToken.find`). */
  readonly provider: OidcProvider;
  /** Successful grants by grant_type, e.g. `{ refresh_token: 1 }`. */
  grantCounts(): Readonly<Record<string, number>>;
  /** Failed token requests by OAuth error, e.g. `{ invalid_grant: 1 }`. */
  errorCounts(): Readonly<Record<string, number>>;
  /** Public signing keys (PEM) with kid and alg, newest first — for Dovecot's local validation. */
  publicKeys(): readonly { readonly kid: string; readonly alg: string; readonly pem: string }[];
  /** Adds a new signing key (used from now on); the previous one stays published. Returns its kid. */
  rotateKeys(): Promise<string>;
  /** Approves a device user code as `accountId` through the provider's own pages. */
  approveDevice(userCode: string, accountId: string): Promise<void>;
  /** Denies a device user code through the provider's own pages (the client gets access_denied). */
  denyDevice(userCode: string): Promise<void>;
  stop(): Promise<void>;
}

/** The part of oidc-provider's surface used here (it ships no types). */
export interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: GrantModel;
  RefreshToken: { find(value: string): Promise<unknown> };
  AccessToken: { find(value: string): Promise<unknown> };
}

/** The part of Koa's context the secret-ledger middleware reads. */
interface KoaContext {
  body: unknown;
  response: { get(field: string): string };
}

/** Fields of token, device authorization and redirect responses that carry a secret. */
const ISSUED_SECRET_FIELDS = ['access_token', 'refresh_token', 'id_token', 'device_code', 'code'] as const;

/** Records every secret the provider hands out (body or redirect) in the test run's ledger. */
async function recordIssuedSecrets(ctx: KoaContext, next: () => Promise<void>): Promise<void> {
  await next();
  const body = ctx.body as Record<string, unknown> | null | undefined;
  if (body && typeof body === 'object' && !Buffer.isBuffer(body)) {
    for (const field of ISSUED_SECRET_FIELDS) {
      if (typeof body[field] === 'string') recordTestSecret(body[field]);
    }
  }
  const location = ctx.response.get('location');
  if (location) {
    const url = URL.canParse(location) ? new URL(location) : undefined;
    const params = new URLSearchParams(url ? `${url.search.slice(1)}&${url.hash.slice(1)}` : '');
    for (const field of ISSUED_SECRET_FIELDS) recordTestSecret(params.get(field) ?? undefined);
  }
}

interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}

interface GrantModel {
  new (init: { accountId: string; clientId: string }): GrantInstance;
  find(id: string): Promise<GrantInstance | undefined>;
}

type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

interface SigningKey {
  readonly jwk: JsonWebKey & { kid: string; alg: string; use: string };
  readonly pem: string;
}

function newSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  return {
    jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

const html = (title: string, body: string): string =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body style="font-family:sans-serif;max-width:36em;margin:2em auto"><h1>${title}</h1>${body}</body></html>`;

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Starts the server; resolves once it listens. */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions = {},
): Promise<AuthorizationServer> {
  const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderConstructor };
  const host = options.host ?? '127.0.0.1';
  const pop3Audience = options.pop3Audience ?? 'pop3://localhost';
  const opaqueAudience = options.opaqueAudience ?? 'pop3-opaque://localhost';
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const claimsFor = options.accessTokenClaims ?? ((accountId: string) => ({ email: accountId }));

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

  const nativeClientId = 'popgate-native';
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
  let signingKeys: SigningKey[] = [newSigningKey()];
  const grants: Record<string, number> = {};
  const errors: Record<string, number> = {};

  const resourceServers: Record<string, Record<string, unknown>> = {
    [pop3Audience]: {
      scope: 'pop3',
      audience: pop3Audience,
      accessTokenTTL: accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    },
    [opaqueAudience]: {
      scope: 'pop3',
      audience: opaqueAudience,
      accessTokenTTL: accessTokenTtl,
      accessTokenFormat: 'opaque',
    },
  };

  const configuration = (): Record<string, unknown> => ({
    adapter: adapter,
    clients: [
      {
        client_id: nativeClientId,
        client_name: 'popgate',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      {
        client_id: secretBasic.clientId,
        client_secret: secretBasic.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'pop3',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: 'popgate-app-jwt',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: {
          keys: [
            {
              ...jwtClientKeys.publicKey.export({ format: 'jwk' }),
              kid: jwtClientKid,
              alg: 'ES256',
              use: 'sig',
            },
          ],
        },
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: introspector.clientId,
        client_secret: introspector.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: signingKeys.map((key) => key.jwk) },
    cookies: { keys: cookieKeys },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...claimsFor(id) }),
    }),
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) =>
      token.accountId ? claimsFor(token.accountId) : undefined,
    formats: {
      customizers: {
        jwt: async (_ctx: unknown, _token: unknown, jwt: { header?: Record<string, unknown> }) => {
          if (options.accessTokenTyp === 'JWT') jwt.header = { ...(jwt.header ?? {}), typ: 'JWT' };
        },
      },
    },
    scopes: ['openid', 'offline_access', 'pop3'],
    clientBasedCORS: () => false,
    rotateRefreshToken: true,
    // oidc-provider drops offline_access from an authorization request without prompt=consent
    // (OIDC Core §11); native apps rarely send that, so a client allowed to refresh always gets
    // a refresh token here.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: options.deviceCodeTtl ?? 600,
      Grant: options.refreshTokenTtl ?? 86_400,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: options.refreshTokenTtl ?? 86_400,
      Session: 3600,
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) =>
          client.clientId === introspector.clientId || token.clientId === client.clientId,
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx: { body: string }, form: string, _out: unknown, err?: unknown) => {
          ctx.body = html(
            'Device login',
            `${err ? '<p id="error">That code was not accepted.</p>' : '<p>Enter the code shown by popgate.</p>'}${form}<button id="submit" type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource: async (
          ctx: { body: string },
          form: string,
          _client: unknown,
          _info: unknown,
          userCode: string,
        ) => {
          ctx.body = html(
            'Confirm device',
            `<p>Code <code id="user-code">${escapeHtml(userCode)}</code></p>${form}<button id="confirm" type="submit" form="op.deviceConfirmForm">Continue</button><button id="abort" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`,
          );
        },
        successSource: async (ctx: { body: string }) => {
          ctx.body = html('Device approved', '<p id="device-success">You can return to popgate.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf ?? pop3Audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          const info = resourceServers[indicator];
          if (!info) throw new Error(`unknown resource ${indicator}`);
          return info;
        },
      },
    },
  });

  const adapter = memoryAdapterFactory();
  const build = (): { provider: OidcProvider; callback: ReturnType<OidcProvider['callback']> } => {
    const provider = new Provider(issuer, configuration());
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

  const interactions = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const provider = current.provider;
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(path);
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const [, uid, action] = match;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      res.writeHead(400).end();
      return;
    }
    if (req.method === 'GET' && action === undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      if (details.prompt.name === 'login') {
        res.end(
          html(
            'Sign in',
            `<form id="popgate-login" method="post" action="/interaction/${uid}/login"><label>User <input id="login" name="login" autocomplete="off"></label> <button id="submit" type="submit">Sign in</button></form>`,
          ),
        );
      } else {
        const scope = escapeHtml(String(details.params.scope ?? ''));
        res.end(
          html(
            'Allow access',
            `<p>popgate asks for: <code>${scope}</code></p><form id="popgate-consent" method="post" action="/interaction/${uid}/confirm"><button id="allow" type="submit">Allow</button></form><form id="popgate-deny" method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Deny</button></form>`,
          ),
        );
      }
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const form = await readForm(req);
    if (action === 'login') {
      const login = form.get('login')?.trim() ?? '';
      if (!login) {
        res
          .writeHead(400, { 'content-type': 'text/html; charset=utf-8' })
          .end(html('Sign in', '<p>Enter a user name.</p>'));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: login } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (action === 'abort') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User denied the request' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const accountId = details.session?.accountId;
    if (!accountId) {
      res.writeHead(400).end();
      return;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    if (!grant) {
      res.writeHead(400).end();
      return;
    }
    const missing = details.prompt.details;
    if (Array.isArray(missing.missingOIDCScope))
      grant.addOIDCScope((missing.missingOIDCScope as string[]).join(' '));
    if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
    if (missing.missingResourceScopes && typeof missing.missingResourceScopes === 'object') {
      for (const [indicator, scopes] of Object.entries(
        missing.missingResourceScopes as Record<string, string[]>,
      )) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  };

  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith('/interaction/')) {
      interactions(req, res, path).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('interaction failed');
      });
      return;
    }
    current.callback(req, res);
  };

  const agentFetch: OAuthFetch = createOAuthFetch(
    options.tls ? { ca: options.tls.ca ?? options.tls.cert } : {},
  );

  /** A tiny user agent: one cookie jar, manual redirects, the pages above. */
  const browse = async (userCode: string, decide: 'approve' | 'deny', accountId?: string): Promise<void> => {
    const cookies = new Map<string, string>();
    const request = async (
      method: 'GET' | 'POST',
      url: string,
      form?: URLSearchParams,
    ): Promise<{ url: string; body: string }> => {
      let target = new URL(url, issuer).href;
      let verb = method;
      let body = form;
      for (let hop = 0; hop < 20; hop++) {
        const headers: Record<string, string> = { accept: 'text/html' };
        if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
        const response = await agentFetch(target, {
          method: verb,
          headers,
          ...(body ? { body: body.toString() } : {}),
        });
        for (const line of response.headers.getSetCookie()) {
          const [pair] = line.split(';');
          const eq = pair?.indexOf('=') ?? -1;
          if (pair && eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
        }
        const location = response.headers.get('location');
        if (response.status >= 300 && response.status < 400 && location) {
          await response.body?.cancel();
          target = new URL(location, target).href;
          verb = 'GET';
          body = undefined;
          continue;
        }
        return { url: target, body: await response.text() };
      }
      throw new Error('too many redirects');
    };
    const hiddenInputs = (page: string): URLSearchParams => {
      const params = new URLSearchParams();
      for (const m of page.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
        const name = /name="([^"]*)"/.exec(m[0])?.[1];
        const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
        if (name) params.set(name, value);
      }
      return params;
    };
    let page = await request('GET', '/device');
    const start = hiddenInputs(page.body);
    start.set('user_code', userCode);
    page = await request('POST', '/device', start);
    if (!page.body.includes('op.deviceConfirmForm'))
      throw new Error(`device code ${userCode} was not accepted`);
    const confirm = hiddenInputs(page.body);
    if (decide === 'deny') {
      confirm.delete('confirm');
      confirm.set('abort', 'yes');
      await request('POST', '/device', confirm);
      return;
    }
    page = await request('POST', '/device', confirm);
    for (let step = 0; step < 6; step++) {
      if (page.body.includes('id="device-success"')) return;
      const uid = /action="\/interaction\/([A-Za-z0-9_-]+)\//.exec(page.body)?.[1];
      if (page.body.includes('id="popgate-login"') && uid) {
        page = await request(
          'POST',
          `/interaction/${uid}/login`,
          new URLSearchParams({ login: accountId ?? '' }),
        );
      } else if (page.body.includes('id="popgate-consent"') && uid) {
        page = await request('POST', `/interaction/${uid}/confirm`, new URLSearchParams());
      } else {
        const title = /<title>([^<]*)<\/title>/.exec(page.body)?.[1] ?? 'unknown page';
        throw new Error(`device approval stopped at "${title}"`);
      }
    }
    throw new Error('device approval did not finish');
  };

  return {
    issuer,
    url: issuer,
    jwksUri: `${issuer}/jwks`,
    pop3Audience,
    opaqueAudience,
    clients: {
      native: { clientId: nativeClientId },
      secretBasic,
      privateKeyJwt: { clientId: 'popgate-app-jwt', privateKey, kid: jwtClientKid },
      introspector,
    },
    get provider() {
      return current.provider;
    },
    grantCounts: () => ({ ...grants }),
    errorCounts: () => ({ ...errors }),
    publicKeys: () => signingKeys.map((key) => ({ kid: key.jwk.kid, alg: key.jwk.alg, pem: key.pem })),
    rotateKeys: async () => {
      signingKeys = [newSigningKey(), ...signingKeys].slice(0, 3);
      current = build();
      return signingKeys[0]?.jwk.kid ?? '';
    },
    approveDevice: (userCode, accountId) => browse(userCode, 'approve', accountId),
    denyDevice: (userCode) => browse(userCode, 'deny'),
    stop: async () => {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface StoredPayload {
  payload: Record<string, unknown>;
  expiresAt: number | undefined;
}

/**
 * oidc-provider's storage adapter over plain Maps, shared by the provider instances one server
 * builds (key rotation builds a new instance): unbounded unlike the default LRU of 1,000 entries,
 * which evicts tokens under load tests.
 */
function memoryAdapterFactory(): new (name: string) => unknown {
  const store = new Map<string, StoredPayload>();
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  const byGrant = new Map<string, Set<string>>();
  const live = (key: string): Record<string, unknown> | undefined => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MemoryAdapter {
    readonly name: string;
    constructor(name: string) {
      this.name = name;
    }
    key(id: string): string {
      return `${this.name}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      store.set(key, {
        payload: { ...payload },
        expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
      });
      if (typeof payload.uid === 'string') byUid.set(payload.uid, id);
      if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id);
      if (typeof payload.grantId === 'string') {
        const set = byGrant.get(payload.grantId) ?? new Set<string>();
        set.add(key);
        byGrant.set(payload.grantId, set);
      }
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(this.key(id));
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const id = byUid.get(uid);
      return id === undefined ? undefined : live(this.key(id));
    }
    async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
      const id = byUserCode.get(userCode);
      return id === undefined ? undefined : live(this.key(id));
    }
    async consume(id: string): Promise<void> {
      const entry = live(this.key(id));
      if (entry) entry.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of byGrant.get(grantId) ?? []) store.delete(key);
      byGrant.delete(grantId);
    }
  };
}

/** The JWK of a public key (for tests that need to verify without the JWKS endpoint). */
export function publicJwkOf(pem: string): JsonWebKey {
  return createPublicKey(pem).export({ format: 'jwk' });
}
