/**
 * What a client is told when its token is refused: the RFC 7628 §3.2.2 error challenge (JSON,
 * base64) and the closing `-ERR [AUTH]` text. The text names the problem and the next step,
 * never any part of the token.
 */
import type { TokenValidator } from '../auth/types.ts';
import { isPopgateError, TokenValidationError } from '../errors.ts';
import { buildOAuthErrorChallenge } from '../sasl/error-challenge.ts';
import type { ServerMechanism } from './options.ts';

const TEXT: Readonly<Record<string, string>> = {
  ERR_AUTH_INVALID_TOKEN: 'the access token is invalid or expired; obtain a fresh token',
  ERR_AUTH_AUDIENCE: 'the access token was issued for another audience',
  ERR_AUTH_ISSUER: 'the access token comes from an issuer this server does not trust',
  ERR_AUTH_TYPE: 'the access token has the wrong type (typ)',
  ERR_AUTH_SCOPE: 'the access token lacks the scope this server requires',
  ERR_AUTH_USER_MISMATCH: 'the SASL user does not match the user of the access token',
  ERR_AUTH_INACTIVE: 'the access token is not active (revoked or expired)',
};

/** A stable reason code for `error` (a TokenValidationError's code, else a generic one). */
export function failureReason(error: unknown): string {
  return isPopgateError(error) ? error.code : 'ERR_AUTH_INVALID_TOKEN';
}

/** The text after `-ERR [AUTH]` for a refused token. */
export function failureText(error: unknown): string {
  const reason = TEXT[failureReason(error)] ?? 'the access token was refused';
  return `Authentication failed: ${reason}.`;
}

/** The base64 error challenge for `mechanism` (RFC 7628 §3.2.2; Google's shape for XOAUTH2). */
export function errorChallenge(
  mechanism: ServerMechanism,
  validator: TokenValidator,
  error: unknown,
): string {
  let fields: { scope?: string; openidConfiguration?: string } = {};
  try {
    fields = validator.challenge(error);
  } catch {
    fields = {};
  }
  const scope =
    fields.scope ?? (error instanceof TokenValidationError ? error.requiredScope : undefined) ?? undefined;
  const insufficient = isPopgateError(error, 'ERR_AUTH_SCOPE');
  if (mechanism === 'XOAUTH2') {
    return buildOAuthErrorChallenge({
      status: insufficient ? '403' : '401',
      schemes: 'bearer',
      ...(scope !== undefined ? { scope } : {}),
    });
  }
  return buildOAuthErrorChallenge({
    status: insufficient ? 'insufficient_scope' : 'invalid_token',
    ...(scope !== undefined ? { scope } : {}),
    ...(fields.openidConfiguration !== undefined
      ? { 'openid-configuration': fields.openidConfiguration }
      : {}),
  });
}
