/**
 * The token response checked field by field (RFC 6749 §5.1, architecture.md R5) into the shape popgate
 * stores. oauth4webapi checks the response first; this repeats the checks popgate relies on,
 * because an access token ends up in a SASL line and a refresh token on disk.
 */
import type { TokenEndpointResponse } from 'oauth4webapi';
import { OAuthError } from '../errors.ts';

/** What one login or refresh yields. Holds secrets: never log it. */
export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: 'bearer';
  /** Epoch milliseconds, or undefined when the server gave no `expires_in`. */
  readonly expiresAt: number | undefined;
  readonly refreshToken: string | undefined;
  /** Scopes granted (the requested ones when the response omits `scope`, RFC 6749 §5.1). */
  readonly scopes: readonly string[];
  /** Epoch milliseconds when the token response arrived. */
  readonly obtainedAt: number;
}

// RFC 6750 §2.1 b64token: the only characters a bearer token may have.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const PRINTABLE = /^[\x21-\x7e]+$/;
const MAX_TOKEN_LENGTH = 32 * 1024;

function fail(field: string, expected: string): never {
  throw new OAuthError('ERR_OAUTH_RESPONSE', `the token response field "${field}" ${expected}`);
}

/**
 * Checks a token endpoint response and returns the {@link TokenSet}. `requestedScopes` stands in
 * for an omitted `scope`; `now` is the injected clock's reading.
 */
export function toTokenSet(
  response: TokenEndpointResponse | Record<string, unknown>,
  requestedScopes: readonly string[],
  now: number,
): TokenSet {
  const body = response as Record<string, unknown>;
  const accessToken = body.access_token;
  if (typeof accessToken !== 'string' || accessToken.length === 0)
    fail('access_token', 'is missing or not a string');
  if (accessToken.length > MAX_TOKEN_LENGTH)
    fail('access_token', `is longer than ${MAX_TOKEN_LENGTH} characters`);
  if (!B64TOKEN.test(accessToken)) fail('access_token', 'has characters a bearer token cannot have');
  const tokenType = body.token_type;
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
    fail('token_type', 'is not "Bearer" (popgate uses bearer tokens only)');
  }
  const expiresIn = body.expires_in;
  let expiresAt: number | undefined;
  if (expiresIn !== undefined) {
    if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      fail('expires_in', 'is not a positive number of seconds');
    }
    expiresAt = now + Math.floor(expiresIn) * 1000;
  }
  const refreshToken = body.refresh_token;
  if (refreshToken !== undefined) {
    if (typeof refreshToken !== 'string' || refreshToken.length === 0)
      fail('refresh_token', 'is not a string');
    if (refreshToken.length > MAX_TOKEN_LENGTH || !PRINTABLE.test(refreshToken)) {
      fail('refresh_token', 'is too long or has control characters');
    }
  }
  const scope = body.scope;
  if (scope !== undefined && typeof scope !== 'string') fail('scope', 'is not a string');
  const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [...requestedScopes];
  return Object.freeze({
    accessToken,
    tokenType: 'bearer',
    expiresAt,
    refreshToken: refreshToken as string | undefined,
    scopes: Object.freeze(scopes),
    obtainedAt: now,
  });
}
