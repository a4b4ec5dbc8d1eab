/**
 * oidc-provider's configuration for the development authorization server: the clients, the two
 * resource servers (JWT and opaque access tokens), lifetimes, and the features tests rely on
 * (device flow, client credentials, introspection, revocation, resource indicators, PKCE).
 * CONTRIBUTING.md ("Real peers") says why the settings that matter are what they are.
 */
import type { JsonWebKey } from 'node:crypto';
import { deviceConfirmPage, deviceInputPage, deviceSuccessPage } from './pages.ts';

/** What one server instance decides once; the configuration is rebuilt from it on key rotation. */
export interface ProviderSettings {
  readonly adapter: new (name: string) => unknown;
  readonly nativeClientId: string;
  readonly secretBasic: { readonly clientId: string; readonly clientSecret: string };
  readonly privateKeyJwt: { readonly clientId: string; readonly publicJwk: JsonWebKey; readonly kid: string };
  readonly introspector: { readonly clientId: string; readonly clientSecret: string };
  readonly cookieKeys: readonly string[];
  readonly pop3Audience: string;
  readonly opaqueAudience: string;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number | undefined;
  readonly deviceCodeTtl: number | undefined;
  readonly accessTokenTyp: 'at+jwt' | 'JWT' | undefined;
  readonly claimsFor: (accountId: string) => Record<string, unknown>;
}

/** The configuration object for `new Provider(issuer, ...)`, signing with `signingJwks`. */
export function providerConfiguration(
  settings: ProviderSettings,
  signingJwks: readonly JsonWebKey[],
): Record<string, unknown> {
  const { pop3Audience, opaqueAudience, accessTokenTtl, introspector, claimsFor } = settings;
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
  return {
    adapter: settings.adapter,
    clients: [
      {
        client_id: settings.nativeClientId,
        client_name: 'popgate',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      {
        client_id: settings.secretBasic.clientId,
        client_secret: settings.secretBasic.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'pop3',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: settings.privateKeyJwt.clientId,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: {
          keys: [
            {
              ...settings.privateKeyJwt.publicJwk,
              kid: settings.privateKeyJwt.kid,
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
    jwks: { keys: [...signingJwks] },
    cookies: { keys: [...settings.cookieKeys] },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...claimsFor(id) }),
    }),
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) =>
      token.accountId ? claimsFor(token.accountId) : undefined,
    formats: {
      customizers: {
        jwt: async (_ctx: unknown, _token: unknown, jwt: { header?: Record<string, unknown> }) => {
          if (settings.accessTokenTyp === 'JWT') jwt.header = { ...(jwt.header ?? {}), typ: 'JWT' };
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
      DeviceCode: settings.deviceCodeTtl ?? 600,
      Grant: settings.refreshTokenTtl ?? 86_400,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: settings.refreshTokenTtl ?? 86_400,
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
          ctx.body = deviceInputPage(form, Boolean(err));
        },
        userCodeConfirmSource: async (
          ctx: { body: string },
          form: string,
          _client: unknown,
          _info: unknown,
          userCode: string,
        ) => {
          ctx.body = deviceConfirmPage(form, userCode);
        },
        successSource: async (ctx: { body: string }) => {
          ctx.body = deviceSuccessPage();
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
  };
}
