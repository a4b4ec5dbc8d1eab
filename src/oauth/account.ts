/**
 * One OAuth account resolved for use: authorization server metadata (from a preset, discovery —
 * RFC 8414 / OpenID Connect Discovery — or explicit endpoints), client identity and
 * authentication, scopes, and transport. The library takes explicit options; the CLI maps the
 * config file onto them.
 */
import * as oauth from 'oauth4webapi';
import { OAuthError } from '../errors.ts';
import { toOAuthError } from './errors-map.ts';
import { checkEndpoint, createOAuthFetch, type OAuthFetch, type OAuthHttpOptions } from './http.ts';
import { getPreset } from './providers/presets.ts';
import type { FlowName, ProviderEndpoints, ProviderId, ProviderPreset } from './providers/types.ts';

/** How the client authenticates at the token endpoint (RFC 6749 §2.3, RFC 7523). */
export type ClientAuthOptions =
  | { readonly method: 'none' }
  | { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly secret: string }
  | { readonly method: 'private_key_jwt'; readonly key: oauth.CryptoKey; readonly kid?: string };

export interface OAuthAccountOptions {
  /** The account's name (as in the config file); used in messages and as the store key. */
  readonly name: string;
  /** A preset id; `custom` (default) needs `issuer` or `endpoints.token`. */
  readonly provider?: ProviderId;
  readonly issuer?: string;
  /** Explicit endpoints; they override the preset's and discovered ones. */
  readonly endpoints?: ProviderEndpoints;
  readonly clientId: string;
  /** Default `{ method: 'none' }` (a public native client). */
  readonly clientAuth?: ClientAuthOptions;
  /** Default: the preset's minimal scopes (app-only scopes for client credentials). */
  readonly scopes?: readonly string[];
  /** RFC 8707 resource indicator sent with authorization and token requests. */
  readonly resource?: string;
  /** Default: the preset's preferred flow, else `device` when the server has a device endpoint. */
  readonly flow?: FlowName;
  readonly authorizationParams?: Readonly<Record<string, string>>;
  readonly http?: OAuthHttpOptions;
}

/** A resolved account. Holds the client secret or key inside `clientAuth`: never log it. */
export interface OAuthAccount {
  readonly name: string;
  readonly preset: ProviderPreset | undefined;
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly clientAuth: oauth.ClientAuth;
  readonly clientAuthMethod: ClientAuthOptions['method'];
  readonly scopes: readonly string[];
  readonly resource: string | undefined;
  readonly flow: FlowName;
  readonly authorizationParams: Readonly<Record<string, string>>;
  readonly http: OAuthHttpOptions;
  /** Options to spread into every oauth4webapi request. */
  readonly requestOptions: {
    readonly [oauth.customFetch]: OAuthFetch;
    readonly [oauth.allowInsecureRequests]?: boolean;
  };
}

/**
 * Fetches authorization server metadata for `issuer`: OpenID Connect discovery first, RFC 8414
 * (`/.well-known/oauth-authorization-server`) when that is missing. The `issuer` in the answer
 * must equal the one asked for (RFC 8414 §3.3).
 */
export async function discover(
  issuer: string,
  http: OAuthHttpOptions = {},
): Promise<oauth.AuthorizationServer> {
  const url = checkEndpoint(issuer, 'issuer', http);
  const options = requestOptionsFor(http);
  let lastError: unknown;
  for (const algorithm of ['oidc', 'oauth2'] as const) {
    try {
      const response = await oauth.discoveryRequest(url, { ...options, algorithm });
      if (response.status === 404) {
        lastError = new OAuthError('ERR_OAUTH_DISCOVERY', `no metadata at ${issuer} (${algorithm})`);
        continue;
      }
      return await oauth.processDiscoveryResponse(url, response);
    } catch (error) {
      const mapped = toOAuthError(error, 'discovery endpoint');
      if (
        mapped.code === 'ERR_OAUTH_TRANSIENT' ||
        mapped.code === 'ERR_OAUTH_INSECURE_ENDPOINT' ||
        mapped.code === 'ERR_OAUTH_TLS_UNTRUSTED'
      )
        throw mapped;
      lastError = mapped;
    }
  }
  const reason = lastError instanceof Error ? lastError.message : 'unknown error';
  throw new OAuthError('ERR_OAUTH_DISCOVERY', `discovery for ${issuer} failed: ${reason}`);
}

function requestOptionsFor(http: OAuthHttpOptions): OAuthAccount['requestOptions'] {
  return Object.freeze({
    [oauth.customFetch]: createOAuthFetch(http),
    // Our own endpoint policy (checkEndpoint) already allowed only loopback http.
    ...(http.allowInsecureHttp ? { [oauth.allowInsecureRequests]: true } : {}),
  });
}

function clientAuthFor(options: ClientAuthOptions): oauth.ClientAuth {
  switch (options.method) {
    case 'none':
      return oauth.None();
    case 'client_secret_basic':
      return oauth.ClientSecretBasic(options.secret);
    case 'client_secret_post':
      return oauth.ClientSecretPost(options.secret);
    case 'private_key_jwt':
      return oauth.PrivateKeyJwt(options.kid ? { key: options.key, kid: options.kid } : options.key);
  }
}

/** Validates the options at the door, runs discovery when needed, and freezes the result. */
export async function resolveAccount(options: OAuthAccountOptions): Promise<OAuthAccount> {
  const http = Object.freeze({ ...(options.http ?? {}) });
  const preset = getPreset(options.provider ?? 'custom');
  if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
    throw new OAuthError(
      'ERR_OAUTH_PROVIDER_UNKNOWN',
      `account ${options.name}: a client id is required (register an app with the provider; see ${preset?.docs ?? 'docs/providers/custom.md'})`,
      { account: options.name },
    );
  }
  const issuer = options.issuer ?? preset?.issuer;
  const explicit: ProviderEndpoints = { ...(preset?.endpoints ?? {}), ...(options.endpoints ?? {}) };
  let metadata: oauth.AuthorizationServer;
  if (issuer !== undefined && (explicit.token === undefined || options.issuer !== undefined)) {
    metadata = await discover(issuer, http);
  } else if (explicit.token !== undefined) {
    metadata = { issuer: issuer ?? new URL(explicit.token).origin };
  } else {
    throw new OAuthError(
      'ERR_OAUTH_PROVIDER_UNKNOWN',
      `account ${options.name}: set a provider preset, an issuer for discovery, or at least a token endpoint`,
      { account: options.name },
    );
  }
  const as: oauth.AuthorizationServer = {
    ...metadata,
    ...(explicit.authorization ? { authorization_endpoint: explicit.authorization } : {}),
    ...(explicit.token ? { token_endpoint: explicit.token } : {}),
    ...(explicit.device ? { device_authorization_endpoint: explicit.device } : {}),
    ...(explicit.revocation ? { revocation_endpoint: explicit.revocation } : {}),
  };
  const named: [keyof oauth.AuthorizationServer, string][] = [
    ['authorization_endpoint', 'authorization endpoint'],
    ['token_endpoint', 'token endpoint'],
    ['device_authorization_endpoint', 'device authorization endpoint'],
    ['revocation_endpoint', 'revocation endpoint'],
  ];
  for (const [key, what] of named) {
    const value = as[key];
    if (typeof value === 'string') checkEndpoint(value, what, http);
  }
  if (typeof as.token_endpoint !== 'string') {
    throw new OAuthError(
      'ERR_OAUTH_DISCOVERY',
      `account ${options.name}: the authorization server has no token endpoint`,
      { account: options.name },
    );
  }
  const flow: FlowName =
    options.flow ?? preset?.flows[0] ?? (as.device_authorization_endpoint ? 'device' : 'browser');
  if (preset && !preset.flows.includes(flow)) {
    throw new OAuthError(
      'ERR_OAUTH_FLOW_UNSUPPORTED',
      `${preset.displayName} does not accept the ${flow} flow for POP3; use ${preset.flows.join(' or ')}`,
      { account: options.name },
    );
  }
  const clientAuthOptions = options.clientAuth ?? { method: 'none' as const };
  if (flow === 'client-credentials' && clientAuthOptions.method === 'none') {
    throw new OAuthError(
      'ERR_OAUTH_INVALID_CLIENT',
      `account ${options.name}: the client credentials flow needs a client secret or private key`,
      { account: options.name },
    );
  }
  const defaultScopes =
    flow === 'client-credentials' ? (preset?.appOnlyScopes ?? preset?.scopes) : preset?.scopes;
  const scopes = Object.freeze([...(options.scopes ?? defaultScopes ?? [])]);
  return Object.freeze({
    name: options.name,
    preset,
    as: Object.freeze(as),
    client: Object.freeze({ client_id: options.clientId }),
    clientAuth: clientAuthFor(clientAuthOptions),
    clientAuthMethod: clientAuthOptions.method,
    scopes,
    resource: options.resource,
    flow,
    authorizationParams: Object.freeze({
      ...(preset?.authorizationParams ?? {}),
      ...(options.authorizationParams ?? {}),
    }),
    http,
    requestOptions: requestOptionsFor(http),
  });
}

/** The scope and resource parameters of a request for this account. */
export function scopeParameters(account: OAuthAccount): Record<string, string> {
  const params: Record<string, string> = {};
  if (account.scopes.length > 0) params.scope = account.scopes.join(' ');
  if (account.resource !== undefined) params.resource = account.resource;
  return params;
}
