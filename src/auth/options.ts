/**
 * Options of the token validator, validated once into a frozen configuration (STYLE.md 6):
 * the caller's object is never kept or mutated, an unknown option fails naming it
 * (`issuers[1].audiance`), a missing or malformed one fails naming it too. Over 400 lines
 * (architecture.md R1) because the public option types and their TSDoc sit next to the one
 * resolver that checks them; the issuer scope rules live in issuer-scope.ts, the CA check in ca.ts.
 */
import { isAbsolute } from 'node:path';
import { ConfigError } from '../errors.ts';
import { caProblem } from '../internal/ca-file.ts';
import { isLoopbackHost } from '../internal/loopback.ts';
import { OptionsChecker } from '../internal/options.ts';
import {
  checkIssuerScopes,
  type EmailVerifiedRule,
  type IssuerScope,
  resolveIssuerScope,
} from './issuer-scope.ts';
import { Secret } from './secret.ts';

/** Claims a login name may come from. `username` is RFC 7662's introspection field. */
export type UserClaim = 'email' | 'preferred_username' | 'upn' | 'sub' | 'username';
export const USER_CLAIMS: readonly UserClaim[] = ['email', 'preferred_username', 'upn', 'sub', 'username'];

/** Asymmetric JWS algorithms (RFC 7518 section 3.1, RFC 8037). HMAC and `none` are never accepted. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type JwsAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** Introspection client settings (RFC 7662 section 2.1: the resource server authenticates). */
export interface IntrospectionOptions {
  /** Introspection endpoint; default the issuer metadata's `introspection_endpoint`. */
  endpoint?: string;
  clientId: string;
  clientSecret: string;
  /** Default `client_secret_basic` (RFC 6749 section 2.3.1). */
  clientAuth?: ClientAuthMethod;
}

/** One trusted issuer. */
export interface IssuerOptions {
  /** The exact `iss` value (RFC 8414 section 2); https (http only to loopback with `allowInsecureLoopback`). */
  issuer: string;
  /**
   * How this issuer's JWTs are checked: `jwt` (RFC 9068, locally with its keys; default) or
   * `introspection` (RFC 7662, always asked). Opaque tokens always go to introspection.
   */
  method?: 'jwt' | 'introspection';
  /** Audience(s) this server accepts; one must be in `aud`. Required unless `requireAudience: false`. */
  audience?: string | readonly string[];
  /** Default true: a token without a matching `aud` is refused. */
  requireAudience?: boolean;
  /** Claim that holds the login name. Default `email`. */
  userClaim?: UserClaim;
  /** Accepted JWT `typ` header values (compared without `application/`, case-insensitively). Default `['at+jwt']`. */
  typ?: readonly string[];
  /** Accept a JWT without a `typ` header. Default false. */
  allowMissingTyp?: boolean;
  /** Accepted signature algorithms. Default every asymmetric algorithm jose supports. */
  algorithms?: readonly string[];
  /** JWKS URL; default the metadata's `jwks_uri`. */
  jwksUrl?: string;
  /** JWKS file (absolute path); reread when it changes. Excludes `jwksUrl`. */
  jwksFile?: string;
  /** Metadata URL; default `<issuer>/.well-known/openid-configuration`, then RFC 8414's well-known URL. */
  discoveryUrl?: string;
  /** `openid-configuration` URL sent in RFC 7628 error challenges; default the OIDC well-known URL. */
  openidConfiguration?: string;
  /** Scopes that grant each right; any one listed suffices. Default read `['pop3']`, delete = read. */
  scopes?: { read?: string | readonly string[]; delete?: string | readonly string[] };
  /** Seconds of clock skew accepted on `exp`/`nbf`/`iat`; default the validator's. */
  clockToleranceSeconds?: number;
  /**
   * Introspection client. Required when `method` is `introspection`; with `jwt` it is optional
   * and lets the same issuer's opaque tokens be introspected while its JWTs are verified locally.
   */
  introspection?: IntrospectionOptions;
  /**
   * Mail domains this issuer may name (docs/server-auth.md, "Several issuers"). A login name with
   * an `@` must be in one of them; one without gets the first appended. Required, and disjoint,
   * when several issuers are configured; optional (any name, used as it is) for a single issuer.
   */
  domains?: string | readonly string[];
  /**
   * Whether an `email` login name needs `email_verified: true`: `required`, `if-present` (refused
   * only when present and not true) or `ignore`. Default `required` with several issuers,
   * `if-present` with one.
   */
  emailVerified?: EmailVerifiedRule;
  /** Opaque tokens starting with one of these belong to this issuer (introspection routing). */
  tokenPrefixes?: string | readonly string[];
  /**
   * CA certificate(s), PEM, trusted instead of the public roots for this issuer's discovery, JWKS
   * and introspection requests (a private CA). Default: Node's roots plus `NODE_EXTRA_CA_CERTS`.
   */
  ca?: string | Buffer;
}

export interface IntrospectionCacheOptions {
  /** Bound on cached answers (LRU). Default 10,000; 0 disables caching. */
  maxEntries?: number;
  /** Longest time an active answer is reused (never past the token's `exp`). Default 60. */
  ttlSeconds?: number;
  /** How long an inactive answer is reused. Default 30. */
  inactiveTtlSeconds?: number;
}

export interface TokenValidatorOptions {
  issuers: readonly IssuerOptions[];
  /** Default 60 seconds. */
  clockToleranceSeconds?: number;
  /** Allow http:// URLs to a loopback host (src/internal/loopback.ts: 127.0.0.0/8, ::1, localhost). Default false. */
  allowInsecureLoopback?: boolean;
  /** Timeout for each request to an identity provider. Default 5000 ms. */
  httpTimeoutMs?: number;
  /** Least time between JWKS refetches for an unknown `kid`. Default 30 s. */
  jwksCooldownSeconds?: number;
  /** JWKS documents are refetched after this age. Default 600 s. */
  jwksMaxAgeSeconds?: number;
  /** Issuer metadata is refetched after this age. Default 86,400 s. */
  discoveryMaxAgeSeconds?: number;
  introspectionCache?: IntrospectionCacheOptions;
  /** Issuer whose challenge fields are sent when a token's issuer is unknown. Default the first. */
  challengeIssuer?: string;
}

export interface ResolvedIntrospection {
  readonly endpoint: URL | undefined;
  readonly clientId: string;
  readonly clientSecret: Secret;
  readonly clientAuth: ClientAuthMethod;
}

export type KeySource =
  | { readonly kind: 'discovery' }
  | { readonly kind: 'url'; readonly url: URL }
  | { readonly kind: 'file'; readonly path: string };

export interface ResolvedIssuer extends IssuerScope {
  readonly issuer: string;
  readonly method: 'jwt' | 'introspection';
  readonly audiences: readonly string[];
  readonly requireAudience: boolean;
  readonly userClaim: UserClaim;
  readonly typ: readonly string[];
  readonly allowMissingTyp: boolean;
  readonly algorithms: readonly JwsAlgorithm[];
  readonly keys: KeySource;
  /** Explicit metadata URL, or undefined for the well-known candidates. */
  readonly discoveryUrl: URL | undefined;
  readonly openidConfiguration: string;
  readonly scopes: { readonly read: readonly string[]; readonly delete: readonly string[] };
  readonly clockToleranceSeconds: number;
  readonly introspection: ResolvedIntrospection | undefined;
  /** The issuer's CA (PEM), or undefined for the default trust store. */
  readonly ca: string | undefined;
}

export interface ResolvedValidatorConfig {
  readonly issuers: readonly ResolvedIssuer[];
  readonly allowInsecureLoopback: boolean;
  readonly httpTimeoutMs: number;
  readonly jwksCooldownSeconds: number;
  readonly jwksMaxAgeSeconds: number;
  readonly discoveryMaxAgeSeconds: number;
  readonly introspectionCache: {
    readonly maxEntries: number;
    readonly ttlSeconds: number;
    readonly inactiveTtlSeconds: number;
  };
  readonly challengeIssuer: string;
}

const TOP_KEYS = [
  'issuers',
  'clockToleranceSeconds',
  'allowInsecureLoopback',
  'httpTimeoutMs',
  'jwksCooldownSeconds',
  'jwksMaxAgeSeconds',
  'discoveryMaxAgeSeconds',
  'introspectionCache',
  'challengeIssuer',
];
const ISSUER_KEYS = [
  'issuer',
  'method',
  'audience',
  'requireAudience',
  'userClaim',
  'typ',
  'allowMissingTyp',
  'algorithms',
  'jwksUrl',
  'jwksFile',
  'discoveryUrl',
  'openidConfiguration',
  'scopes',
  'clockToleranceSeconds',
  'introspection',
  'domains',
  'emailVerified',
  'tokenPrefixes',
  'ca',
];
const JWT_ONLY_KEYS = ['typ', 'allowMissingTyp', 'algorithms', 'jwksUrl', 'jwksFile'];
const INTROSPECTION_KEYS = ['endpoint', 'clientId', 'clientSecret', 'clientAuth'];
const CACHE_KEYS = ['maxEntries', 'ttlSeconds', 'inactiveTtlSeconds'];

const check = new OptionsChecker({
  invalid: (key, what) => `token validation option ${key} ${what}`,
  unknown: (key, hint, known) => `unknown token validation option ${key}${hint} (known: ${known.join(', ')})`,
});

function invalid(key: string, what: string): ConfigError {
  return check.invalid(key, what);
}

function record(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(key, 'must be an object');
  return value as Record<string, unknown>;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  check.knownKeys(value, allowed, prefix);
}

function text(value: unknown, key: string): string {
  return check.string(value, key);
}

function required(value: unknown, key: string): unknown {
  if (value === undefined) {
    throw new ConfigError('ERR_CONFIG_MISSING', `token validation option ${key} is required`, { key });
  }
  return value;
}

function bool(value: unknown, key: string, fallback: boolean): boolean {
  return check.boolean(value, key, fallback);
}

function integer(value: unknown, key: string, fallback: number, min: number, max: number): number {
  return check.integer(value, key, { min, max }, fallback);
}

function list(
  value: unknown,
  key: string,
  fallback: readonly string[],
  allowEmpty = false,
): readonly string[] {
  if (value === undefined) return fallback;
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items) || (!allowEmpty && items.length === 0)) {
    throw invalid(
      key,
      allowEmpty ? 'must be a string or a list of strings' : 'must be a non-empty list of strings',
    );
  }
  return Object.freeze(items.map((item, i) => text(item, `${key}[${i}]`)));
}

/** Parses an endpoint URL: https, or http to loopback when explicitly allowed; no userinfo, no fragment. */
export function endpointUrl(value: unknown, key: string, allowInsecureLoopback: boolean): URL {
  const raw = text(value, key);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(key, 'must be an absolute URL');
  }
  if (url.username || url.password) throw invalid(key, 'must not carry credentials');
  if (url.hash) throw invalid(key, 'must not have a fragment');
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && allowInsecureLoopback && isLoopbackHost(url.hostname)) return url;
  throw invalid(
    key,
    url.protocol === 'http:'
      ? 'must be https (http is allowed only to loopback with allowInsecureLoopback)'
      : 'must be an https URL',
  );
}

/** Normalises a `typ` value the way RFC 8725 section 3.11 / RFC 9068 section 2.1 compare them. */
export function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

function resolveIntrospection(value: unknown, key: string, allowLoopback: boolean): ResolvedIntrospection {
  const input = record(required(value, key), key);
  onlyKeys(input, INTROSPECTION_KEYS, key);
  const clientAuth = input.clientAuth ?? 'client_secret_basic';
  if (clientAuth !== 'client_secret_basic' && clientAuth !== 'client_secret_post') {
    throw invalid(`${key}.clientAuth`, 'must be client_secret_basic or client_secret_post');
  }
  const secret = input.clientSecret;
  if (typeof secret !== 'string' || secret.length === 0) {
    throw invalid(`${key}.clientSecret`, 'must be a non-empty string');
  }
  return Object.freeze({
    endpoint:
      input.endpoint === undefined
        ? undefined
        : endpointUrl(input.endpoint, `${key}.endpoint`, allowLoopback),
    clientId: text(required(input.clientId, `${key}.clientId`), `${key}.clientId`),
    clientSecret: new Secret(secret),
    clientAuth,
  });
}

/** The issuer's CA as PEM text, checked (a Buffer is read as UTF-8). */
function resolveCa(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  const pem = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  if (typeof pem !== 'string') throw invalid(key, 'must be PEM text (a string or a Buffer)');
  const problem = caProblem(pem);
  if (problem !== undefined) throw invalid(key, `is not a usable CA: ${problem}`);
  return pem;
}

function resolveIssuer(
  value: unknown,
  key: string,
  defaults: { tolerance: number; allowLoopback: boolean; several: boolean },
) {
  const input = record(value, key);
  onlyKeys(input, ISSUER_KEYS, key);
  const issuerUrl = endpointUrl(
    required(input.issuer, `${key}.issuer`),
    `${key}.issuer`,
    defaults.allowLoopback,
  );
  if (issuerUrl.search) throw invalid(`${key}.issuer`, 'must not have a query (RFC 8414 section 2)');
  const issuer = input.issuer as string;
  const method = input.method ?? 'jwt';
  if (method !== 'jwt' && method !== 'introspection')
    throw invalid(`${key}.method`, 'must be jwt or introspection');
  if (method === 'introspection') {
    for (const name of JWT_ONLY_KEYS) {
      if (input[name] !== undefined) throw invalid(`${key}.${name}`, 'applies only to method jwt');
    }
  }
  const requireAudience = bool(input.requireAudience, `${key}.requireAudience`, true);
  const audiences = list(input.audience, `${key}.audience`, []);
  if (requireAudience && audiences.length === 0) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `token validation option ${key}.audience is required (or set requireAudience: false)`,
      { key: `${key}.audience` },
    );
  }
  const userClaim = input.userClaim ?? 'email';
  if (!USER_CLAIMS.includes(userClaim as UserClaim)) {
    throw invalid(`${key}.userClaim`, `must be one of ${USER_CLAIMS.join(', ')}`);
  }
  const algorithms = list(input.algorithms, `${key}.algorithms`, ASYMMETRIC_ALGORITHMS);
  algorithms.forEach((alg, i) => {
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      throw invalid(
        `${key}.algorithms[${i}]`,
        `is not an accepted algorithm (HMAC and none are never accepted with public keys; use one of ${ASYMMETRIC_ALGORITHMS.join(', ')})`,
      );
    }
  });
  if (input.jwksUrl !== undefined && input.jwksFile !== undefined) {
    throw invalid(`${key}.jwksFile`, 'cannot be combined with jwksUrl');
  }
  let keys: KeySource = { kind: 'discovery' };
  if (input.jwksUrl !== undefined) {
    keys = { kind: 'url', url: endpointUrl(input.jwksUrl, `${key}.jwksUrl`, defaults.allowLoopback) };
  } else if (input.jwksFile !== undefined) {
    const path = text(input.jwksFile, `${key}.jwksFile`);
    if (!isAbsolute(path)) throw invalid(`${key}.jwksFile`, 'must be an absolute path');
    keys = { kind: 'file', path };
  }
  const scopesInput = input.scopes === undefined ? {} : record(input.scopes, `${key}.scopes`);
  onlyKeys(scopesInput, ['read', 'delete'], `${key}.scopes`);
  const read = list(scopesInput.read, `${key}.scopes.read`, ['pop3']);
  const del = list(scopesInput.delete, `${key}.scopes.delete`, read);
  for (const scope of [...read, ...del]) {
    if (/\s|"|\\/.test(scope))
      throw invalid(`${key}.scopes`, 'entries must be single scope tokens (RFC 6749 section 3.3)');
  }
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  const introspects = method === 'introspection' || input.introspection !== undefined;
  const scope = resolveIssuerScope(input, key, check, {
    emailVerified: defaults.several ? 'required' : 'if-present',
    introspects,
  });
  return Object.freeze({
    issuer,
    method,
    audiences,
    requireAudience,
    userClaim: userClaim as UserClaim,
    typ: Object.freeze(list(input.typ, `${key}.typ`, ['at+jwt']).map(normalizeTyp)),
    allowMissingTyp: bool(input.allowMissingTyp, `${key}.allowMissingTyp`, false),
    algorithms: algorithms as readonly JwsAlgorithm[],
    keys: Object.freeze(keys),
    discoveryUrl:
      input.discoveryUrl === undefined
        ? undefined
        : endpointUrl(input.discoveryUrl, `${key}.discoveryUrl`, defaults.allowLoopback),
    openidConfiguration:
      input.openidConfiguration === undefined
        ? `${base}/.well-known/openid-configuration`
        : endpointUrl(input.openidConfiguration, `${key}.openidConfiguration`, defaults.allowLoopback).href,
    scopes: Object.freeze({ read, delete: del }),
    clockToleranceSeconds: integer(
      input.clockToleranceSeconds,
      `${key}.clockToleranceSeconds`,
      defaults.tolerance,
      0,
      3600,
    ),
    introspection: introspects
      ? resolveIntrospection(input.introspection, `${key}.introspection`, defaults.allowLoopback)
      : undefined,
    ...scope,
    ca: resolveCa(input.ca, `${key}.ca`),
  } satisfies ResolvedIssuer);
}

/**
 * Validates `options` into a frozen configuration.
 *
 * @throws ConfigError `ERR_CONFIG_UNKNOWN_KEY`, `ERR_CONFIG_MISSING` or `ERR_CONFIG_INVALID`, with
 *   `key` naming the option (e.g. `issuers[0].audience`).
 */
export function resolveValidatorOptions(options: unknown): ResolvedValidatorConfig {
  const input = record(options, 'options');
  onlyKeys(input, TOP_KEYS, '');
  const allowLoopback = bool(input.allowInsecureLoopback, 'allowInsecureLoopback', false);
  const tolerance = integer(input.clockToleranceSeconds, 'clockToleranceSeconds', 60, 0, 3600);
  const issuersInput = required(input.issuers, 'issuers');
  if (!Array.isArray(issuersInput) || issuersInput.length === 0) {
    throw invalid('issuers', 'must be a non-empty list');
  }
  const several = issuersInput.length > 1;
  const issuers = issuersInput.map((item, i) =>
    resolveIssuer(item, `issuers[${i}]`, { tolerance, allowLoopback, several }),
  );
  const seen = new Set<string>();
  issuers.forEach((issuer, i) => {
    if (seen.has(issuer.issuer)) throw invalid(`issuers[${i}].issuer`, 'is configured twice');
    seen.add(issuer.issuer);
  });
  checkIssuerScopes(
    issuers.map((issuer) => ({ issuer: issuer.issuer, scope: issuer, introspects: !!issuer.introspection })),
  );
  const cacheInput =
    input.introspectionCache === undefined ? {} : record(input.introspectionCache, 'introspectionCache');
  onlyKeys(cacheInput, CACHE_KEYS, 'introspectionCache');
  const challengeIssuer =
    input.challengeIssuer === undefined ? issuers[0]!.issuer : text(input.challengeIssuer, 'challengeIssuer');
  if (!seen.has(challengeIssuer)) throw invalid('challengeIssuer', 'must be one of the configured issuers');
  return Object.freeze({
    issuers: Object.freeze(issuers),
    allowInsecureLoopback: allowLoopback,
    httpTimeoutMs: integer(input.httpTimeoutMs, 'httpTimeoutMs', 5000, 100, 120_000),
    jwksCooldownSeconds: integer(input.jwksCooldownSeconds, 'jwksCooldownSeconds', 30, 0, 86_400),
    jwksMaxAgeSeconds: integer(input.jwksMaxAgeSeconds, 'jwksMaxAgeSeconds', 600, 1, 604_800),
    discoveryMaxAgeSeconds: integer(
      input.discoveryMaxAgeSeconds,
      'discoveryMaxAgeSeconds',
      86_400,
      1,
      604_800,
    ),
    introspectionCache: Object.freeze({
      maxEntries: integer(cacheInput.maxEntries, 'introspectionCache.maxEntries', 10_000, 0, 10_000_000),
      ttlSeconds: integer(cacheInput.ttlSeconds, 'introspectionCache.ttlSeconds', 60, 0, 86_400),
      inactiveTtlSeconds: integer(
        cacheInput.inactiveTtlSeconds,
        'introspectionCache.inactiveTtlSeconds',
        30,
        0,
        3600,
      ),
    }),
    challengeIssuer,
  });
}
