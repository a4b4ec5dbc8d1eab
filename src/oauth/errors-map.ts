/**
 * Turns what oauth4webapi and fetch throw into popgate's typed {@link OAuthError}s. Upstream
 * response bodies are never attached (they can echo request data); only the OAuth `error` code,
 * a capped `error_description`, and the HTTP status travel on.
 */
import * as oauth from 'oauth4webapi';
import { type ErrorCode, OAuthError } from '../errors.ts';
import { certificateAdvice, classifyTlsFailure } from '../internal/tls-errors.ts';
import { parseRetryAfter } from './http.ts';

const cap = (text: string): string => text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200);

/** Throws ERR_OAUTH_TRANSIENT for a 5xx or 429 answer, with the server's Retry-After. */
export function throwIfTransient(response: Response, what: string, now: number, account?: string): void {
  if (response.status < 500 && response.status !== 429) return;
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now);
  throw new OAuthError(
    'ERR_OAUTH_TRANSIENT',
    `the ${what} answered HTTP ${response.status}; try again later`,
    {
      status: response.status,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
      ...(account !== undefined ? { account } : {}),
    },
  );
}

const CODES: Readonly<Record<string, ErrorCode>> = {
  invalid_grant: 'ERR_OAUTH_REAUTH_REQUIRED',
  invalid_client: 'ERR_OAUTH_INVALID_CLIENT',
  unauthorized_client: 'ERR_OAUTH_INVALID_CLIENT',
  invalid_scope: 'ERR_OAUTH_INVALID_SCOPE',
  invalid_target: 'ERR_OAUTH_INVALID_SCOPE',
  access_denied: 'ERR_OAUTH_ACCESS_DENIED',
  expired_token: 'ERR_OAUTH_EXPIRED',
  unsupported_grant_type: 'ERR_OAUTH_FLOW_UNSUPPORTED',
  temporarily_unavailable: 'ERR_OAUTH_TRANSIENT',
  server_error: 'ERR_OAUTH_TRANSIENT',
};

/** Maps any error from an OAuth exchange to an {@link OAuthError}. */
export function toOAuthError(error: unknown, what: string, account?: string): OAuthError {
  if (error instanceof OAuthError) return error;
  const base = account !== undefined ? { account } : {};
  if (error instanceof oauth.ResponseBodyError || error instanceof oauth.AuthorizationResponseError) {
    const status = error instanceof oauth.ResponseBodyError ? error.status : undefined;
    const code =
      CODES[error.error] ??
      (status !== undefined && status >= 500 ? 'ERR_OAUTH_TRANSIENT' : 'ERR_OAUTH_RESPONSE');
    const description = error.error_description ? `: ${cap(error.error_description)}` : '';
    return new OAuthError(code, `the ${what} answered ${cap(error.error)}${description}`, {
      ...base,
      oauthError: cap(error.error),
      ...(status !== undefined ? { status } : {}),
    });
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const challenge = error.cause[0];
    const oauthError = challenge?.parameters.error;
    const code =
      error.status === 401 || oauthError === 'invalid_client'
        ? 'ERR_OAUTH_INVALID_CLIENT'
        : 'ERR_OAUTH_RESPONSE';
    return new OAuthError(
      code,
      `the ${what} refused the client (HTTP ${error.status}${oauthError ? `, ${cap(oauthError)}` : ''})`,
      {
        ...base,
        status: error.status,
        ...(oauthError ? { oauthError: cap(oauthError) } : {}),
      },
    );
  }
  if (error instanceof oauth.OperationProcessingError) {
    if (error.code === oauth.REQUEST_PROTOCOL_FORBIDDEN || error.code === oauth.HTTP_REQUEST_FORBIDDEN) {
      return new OAuthError('ERR_OAUTH_INSECURE_ENDPOINT', `the ${what} must use https`, base);
    }
    return new OAuthError(
      'ERR_OAUTH_RESPONSE',
      `the ${what} sent an invalid response: ${cap(error.message)}`,
      base,
    );
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    return new OAuthError('ERR_OAUTH_FLOW_UNSUPPORTED', `the ${what}: ${cap(error.message)}`, base);
  }
  // A certificate that does not verify is a configuration fault, not a network one: say how to fix it.
  const tls = classifyTlsFailure(error);
  if (tls.kind !== 'network') {
    return new OAuthError(
      'ERR_OAUTH_TLS_UNTRUSTED',
      `${certificateAdvice(tls.kind, `the ${what}`, 'the host in its URL')} (${tls.code})`,
      { ...base, cause: error },
    );
  }
  // fetch failures (TypeError "fetch failed" with a system cause), timeouts, aborts.
  const reason = describeNetworkError(error);
  return new OAuthError('ERR_OAUTH_TRANSIENT', `could not reach the ${what} (${reason}); try again later`, {
    ...base,
    cause: error,
  });
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  const cause = (error as { cause?: unknown }).cause;
  const code = (cause as { code?: unknown } | undefined)?.code ?? (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return cap(error.name === 'TimeoutError' ? 'timeout' : error.message);
}
