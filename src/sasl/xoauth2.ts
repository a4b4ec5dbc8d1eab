/**
 * XOAUTH2 (Google/Microsoft): `user=<user>^Aauth=Bearer <token>^A^A`, base64 on the wire.
 * https://developers.google.com/gmail/imap/xoauth2-protocol
 */
import { SaslError } from '../errors.ts';
import { decodeBase64Strict, decodeUtf8Strict, encodeBase64 } from './base64.ts';
import { assertBearerToken, parseBearerAuth } from './bearer.ts';

export interface XOAuth2Credentials {
  readonly user: string;
  readonly token: string;
}

/** The base64 initial response. Refuses a user containing ^A/CR/LF/NUL or a malformed token. */
export function encodeXOAuth2({ user, token }: XOAuth2Credentials): string {
  if (!user || /[\x00-\x1f]/.test(user)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the XOAUTH2 user is empty or contains control characters');
  }
  assertBearerToken(token);
  return encodeBase64(`user=${user}\x01auth=Bearer ${token}\x01\x01`);
}

/** Server side: strict decode of the base64 initial response (ERR_SASL_MALFORMED / _TOO_LARGE). */
export function decodeXOAuth2(base64: string, maxLength?: number): XOAuth2Credentials {
  const text = decodeUtf8Strict(decodeBase64Strict(base64, maxLength), 'the XOAUTH2 response');
  if (!text.endsWith('\x01\x01'))
    throw new SaslError('ERR_SASL_MALFORMED', 'XOAUTH2 response is not terminated');
  const parts = text.slice(0, -2).split('\x01');
  let user: string | undefined;
  let token: string | undefined;
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SaslError('ERR_SASL_MALFORMED', 'XOAUTH2 response has a malformed field');
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === 'user' && user === undefined) user = value;
    else if (key === 'auth' && token === undefined) {
      token = parseBearerAuth(value);
      if (token === undefined)
        throw new SaslError('ERR_SASL_MALFORMED', 'XOAUTH2 auth field is not a bearer token');
    } else {
      throw new SaslError('ERR_SASL_MALFORMED', 'XOAUTH2 response has an unknown or repeated field');
    }
  }
  if (!user || /[\x00-\x1f]/.test(user) || token === undefined) {
    throw new SaslError('ERR_SASL_MALFORMED', 'XOAUTH2 response lacks user or auth');
  }
  return { user, token };
}
