/** PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, base64 on the wire. */
import { SaslError } from '../errors.ts';
import { decodeBase64Strict, decodeUtf8Strict, encodeBase64 } from './base64.ts';

export interface PlainCredentials {
  readonly authzid?: string;
  readonly user: string;
  readonly password: string;
}

export function encodePlain({ authzid, user, password }: PlainCredentials): string {
  for (const [what, value] of [
    ['authzid', authzid ?? ''],
    ['user', user],
    ['password', password],
  ] as const) {
    if (value.includes('\0')) throw new SaslError('ERR_SASL_MALFORMED', `the PLAIN ${what} contains NUL`);
  }
  if (!user || !password) throw new SaslError('ERR_SASL_MALFORMED', 'PLAIN needs a user and a password');
  return encodeBase64(`${authzid ?? ''}\0${user}\0${password}`);
}

/** Server side: strict decode (ERR_SASL_MALFORMED / ERR_SASL_TOO_LARGE). */
export function decodePlain(base64: string, maxLength?: number): Required<PlainCredentials> {
  const text = decodeUtf8Strict(decodeBase64Strict(base64, maxLength), 'the PLAIN response');
  const parts = text.split('\0');
  if (parts.length !== 3) throw new SaslError('ERR_SASL_MALFORMED', 'PLAIN response must have three fields');
  const [authzid, user, password] = parts as [string, string, string];
  if (!user || !password) throw new SaslError('ERR_SASL_MALFORMED', 'PLAIN user or password is empty');
  if (user.length > 255 || authzid.length > 255 || password.length > 1024) {
    throw new SaslError('ERR_SASL_MALFORMED', 'PLAIN field too long');
  }
  return { authzid, user, password };
}
