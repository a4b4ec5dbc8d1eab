import { SaslError } from '../errors.ts';

/** RFC 6750 §2.1 b64token: the only shape a bearer token may have on the wire. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Refuses a token that could break the SASL framing (ERR_SASL_MALFORMED, token not echoed). */
export function assertBearerToken(token: string): void {
  if (typeof token !== 'string' || !B64TOKEN.test(token)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the access token is not an RFC 6750 bearer token (b64token)');
  }
}

/** Parses `Bearer <token>` (scheme case-insensitive); undefined when it is not one. */
export function parseBearerAuth(value: string): string | undefined {
  const match = /^bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(value);
  return match?.[1];
}
