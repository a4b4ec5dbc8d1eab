/**
 * Verifies a JWT access token (RFC 9068) of one configured issuer with jose: signature with a
 * key from the issuer's JWKS under the issuer's algorithm allow-list, `iss` exact, `aud` one of
 * the configured audiences, `exp` required, `exp`/`nbf`/`iat` with leeway, then the `typ` header
 * (RFC 9068 section 2.1, RFC 8725 section 3.11), token kind and sender constraint.
 */
import { errors as joseErrors, jwtVerify } from 'jose';
import { TokenValidationError } from '../errors.ts';
import { audienceMatches, refuseSenderConstrained, validatedToken } from './claims.ts';
import type { KeySet } from './keys.ts';
import { normalizeTyp, type ResolvedIssuer } from './options.ts';
import type { ValidatedToken } from './types.ts';

/** Maps jose's verdicts to validator errors; the jose error stays only as non-enumerable cause. */
function mapJoseError(error: unknown, issuer: ResolvedIssuer): unknown {
  if (error instanceof TokenValidationError) return error;
  if (error instanceof joseErrors.JWTExpired) {
    return new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token has expired; get a new one', {
      cause: error,
    });
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') {
      return new TokenValidationError(
        'ERR_AUTH_AUDIENCE',
        `the token is not meant for this server (audience must be ${issuer.audiences.join(' or ')})`,
        { cause: error },
      );
    }
    if (error.claim === 'iss') {
      return new TokenValidationError('ERR_AUTH_ISSUER', 'the token issuer does not match', { cause: error });
    }
    if (error.claim === 'nbf') {
      return new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token is not valid yet', {
        cause: error,
      });
    }
    return new TokenValidationError(
      'ERR_AUTH_INVALID_TOKEN',
      `the token's ${error.claim} claim is missing or invalid`,
      { cause: error },
    );
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenValidationError(
      'ERR_AUTH_INVALID_TOKEN',
      'the token is signed with an algorithm not accepted',
      {
        cause: error,
      },
    );
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return new TokenValidationError(
      'ERR_AUTH_INVALID_TOKEN',
      'the token is signed with a key the issuer does not publish',
      { cause: error },
    );
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token signature is invalid', {
      cause: error,
    });
  }
  if (error instanceof joseErrors.JOSEError) {
    return new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token is malformed', { cause: error });
  }
  return error;
}

/** The header `typ` must be an accepted one (or absent when explicitly allowed). */
function checkTyp(issuer: ResolvedIssuer, typ: unknown): void {
  if (typ === undefined && issuer.allowMissingTyp) return;
  if (typeof typ === 'string' && issuer.typ.includes(normalizeTyp(typ))) return;
  throw new TokenValidationError(
    'ERR_AUTH_TYPE',
    `the token is not an access token (typ must be ${issuer.typ.join(' or ')})`,
  );
}

/**
 * Keycloak writes the token kind into a `typ` claim (`Bearer`, `ID`, `Refresh`). When present
 * it must say access token, so an ID token accepted under a lax `typ: JWT` header rule still fails.
 */
function checkKindClaim(claims: Record<string, unknown>): void {
  const kind = claims.typ;
  if (kind === undefined) return;
  if (typeof kind === 'string' && ['bearer', 'at+jwt'].includes(normalizeTyp(kind))) return;
  throw new TokenValidationError('ERR_AUTH_TYPE', 'the token is not an access token (typ claim)');
}

/** Verifies `token` against `issuer`; `nowMs` is the clock (tests freeze it). */
export async function verifyJwt(
  token: string,
  issuer: ResolvedIssuer,
  keys: KeySet,
  nowMs: number,
): Promise<ValidatedToken> {
  let result: Awaited<ReturnType<typeof jwtVerify>>;
  try {
    result = await jwtVerify(token, keys.resolve, {
      issuer: issuer.issuer,
      ...(issuer.requireAudience ? { audience: [...issuer.audiences] } : {}),
      algorithms: [...issuer.algorithms],
      clockTolerance: issuer.clockToleranceSeconds,
      currentDate: new Date(nowMs),
      requiredClaims: ['exp'],
    });
  } catch (error) {
    throw mapJoseError(error, issuer);
  }
  const claims = result.payload as Record<string, unknown>;
  checkTyp(issuer, result.protectedHeader.typ);
  checkKindClaim(claims);
  if (!issuer.requireAudience && issuer.audiences.length > 0 && claims.aud !== undefined) {
    if (!audienceMatches(claims.aud, issuer.audiences)) {
      throw new TokenValidationError('ERR_AUTH_AUDIENCE', 'the token is not meant for this server');
    }
  }
  refuseSenderConstrained(claims);
  return validatedToken(issuer, claims, 'jwt');
}
