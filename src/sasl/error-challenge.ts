/**
 * The OAuth error challenge a server sends on a failed OAUTHBEARER/XOAUTH2 exchange
 * (RFC 7628 §3.2.2: `{"status":"invalid_token","scope":"...","openid-configuration":"..."}`;
 * Google's XOAUTH2 uses `{"status":"401","schemes":"bearer","scope":"..."}`), base64 on the wire.
 * The client must then answer: OAUTHBEARER with `%x01` (base64 `AQ==`), XOAUTH2 with an empty
 * line; the server ends the exchange with -ERR.
 */
import { SaslError } from '../errors.ts';
import { decodeBase64Strict, decodeUtf8Strict, encodeBase64 } from './base64.ts';

export interface OAuthErrorChallenge {
  /** `invalid_token`, `insufficient_scope`, or an HTTP status such as `401` (Google). */
  readonly status: string;
  readonly scope?: string;
  readonly schemes?: string;
  readonly 'openid-configuration'?: string;
}

/** Builds the base64 challenge (server side). */
export function buildOAuthErrorChallenge(challenge: OAuthErrorChallenge): string {
  const body: Record<string, string> = { status: challenge.status };
  if (challenge.schemes !== undefined) body.schemes = challenge.schemes;
  if (challenge.scope !== undefined) body.scope = challenge.scope;
  if (challenge['openid-configuration'] !== undefined) {
    body['openid-configuration'] = challenge['openid-configuration'];
  }
  return encodeBase64(JSON.stringify(body));
}

/**
 * Decodes a challenge (client side) into a plain object of its string fields, capped; only
 * `status`, `scope`, `schemes` and `openid-configuration` are kept. Throws ERR_SASL_MALFORMED.
 */
export function parseOAuthErrorChallenge(base64: string, maxLength = 16 * 1024): OAuthErrorChallenge {
  const text = decodeUtf8Strict(decodeBase64Strict(base64, maxLength), 'the SASL error challenge');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SaslError('ERR_SASL_MALFORMED', 'the SASL error challenge is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the SASL error challenge is not a JSON object');
  }
  const obj = parsed as Record<string, unknown>;
  const field = (key: string): string | undefined => {
    const value = obj[key];
    if (typeof value === 'string') return value.slice(0, 2048);
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    return undefined;
  };
  const status = field('status');
  if (status === undefined)
    throw new SaslError('ERR_SASL_MALFORMED', 'the SASL error challenge has no status');
  const out: { -readonly [K in keyof OAuthErrorChallenge]: OAuthErrorChallenge[K] } = { status };
  const scope = field('scope');
  if (scope !== undefined) out.scope = scope;
  const schemes = field('schemes');
  if (schemes !== undefined) out.schemes = schemes;
  const oidc = field('openid-configuration');
  if (oidc !== undefined) out['openid-configuration'] = oidc;
  return Object.freeze(out);
}

/** The client's answer to an error challenge: `AQ==` (%x01) for OAUTHBEARER, empty for XOAUTH2. */
export function errorChallengeAnswer(mechanism: 'OAUTHBEARER' | 'XOAUTH2'): string {
  return mechanism === 'OAUTHBEARER' ? encodeBase64(Buffer.from([1])) : '';
}

/** Server side: whether a client line acknowledges an error challenge (`AQ==` or empty). */
export function isErrorChallengeAnswer(line: string): boolean {
  return line === '' || line === 'AQ==';
}
