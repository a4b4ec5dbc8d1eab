/**
 * OAUTHBEARER (RFC 7628 §3.1): a GS2 header `n,a=<authzid>,` then `^A`-separated key=value
 * pairs (`host`, `port`, `auth=Bearer <token>`) and a final `^A`, base64 on the wire.
 * The authzid is a GS2 saslname: `,` is written `=2C` and `=` is written `=3D` (RFC 5801 §4).
 */
import { SaslError } from '../errors.ts';
import { decodeBase64Strict, decodeUtf8Strict, encodeBase64 } from './base64.ts';
import { assertBearerToken, parseBearerAuth } from './bearer.ts';

export interface OAuthBearerCredentials {
  /** The authorization identity (the mailbox user); Dovecot requires it. */
  readonly user?: string;
  readonly token: string;
  readonly host?: string;
  readonly port?: number;
}

export interface OAuthBearerDecoded {
  readonly user: string | undefined;
  readonly token: string;
  readonly host: string | undefined;
  readonly port: number | undefined;
  /** Every key=value pair, `auth` excluded (it holds the token). */
  readonly params: ReadonlyMap<string, string>;
}

/** GS2 saslname escaping (RFC 5801 §4): `=` → `=3D`, `,` → `=2C`. */
export function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Inverse of {@link escapeSaslName}; any other `=` sequence or a raw `,` is malformed. */
export function unescapeSaslName(name: string): string {
  if (!/^(?:[^=,]|=2C|=3D)*$/.test(name)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the OAUTHBEARER authzid has an invalid escape');
  }
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const CONTROL = /[\x00-\x1f\x7f]/;
const KEY = /^[A-Za-z]+$/;
// RFC 7628: value = *(VCHAR / SP / HTAB / CR / LF)
const VALUE = /^[\x21-\x7e \t\r\n]*$/;

/** The base64 initial response. */
export function encodeOAuthBearer({ user, token, host, port }: OAuthBearerCredentials): string {
  if (user !== undefined && (user === '' || CONTROL.test(user))) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the OAUTHBEARER user is empty or contains control characters');
  }
  if (host !== undefined && !/^[\x21-\x7e]+$/.test(host)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the OAUTHBEARER host is invalid');
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new SaslError('ERR_SASL_MALFORMED', 'the OAUTHBEARER port is invalid');
  }
  assertBearerToken(token);
  const gs2 = `n,${user === undefined ? '' : `a=${escapeSaslName(user)}`},`;
  let kv = '';
  if (host !== undefined) kv += `host=${host}\x01`;
  if (port !== undefined) kv += `port=${port}\x01`;
  kv += `auth=Bearer ${token}\x01`;
  return encodeBase64(`${gs2}\x01${kv}\x01`);
}

/** Server side: strict decode (ERR_SASL_MALFORMED / ERR_SASL_TOO_LARGE). */
export function decodeOAuthBearer(base64: string, maxLength?: number): OAuthBearerDecoded {
  const text = decodeUtf8Strict(decodeBase64Strict(base64, maxLength), 'the OAUTHBEARER response');
  const malformed = (what: string) => new SaslError('ERR_SASL_MALFORMED', `OAUTHBEARER response: ${what}`);
  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  const first = text.indexOf(',');
  if (first === -1) throw malformed('no GS2 header');
  const flag = text.slice(0, first);
  if (flag !== 'n' && flag !== 'y') throw malformed('channel binding is not supported');
  const second = text.indexOf(',', first + 1);
  if (second === -1) throw malformed('GS2 header not terminated');
  const authz = text.slice(first + 1, second);
  let user: string | undefined;
  if (authz !== '') {
    if (!authz.startsWith('a=')) throw malformed('GS2 authzid must start with a=');
    user = unescapeSaslName(authz.slice(2));
    if (user === '' || CONTROL.test(user)) throw malformed('empty or invalid authzid');
  }
  const rest = text.slice(second + 1);
  if (!rest.startsWith('\x01') || !rest.endsWith('\x01\x01') || rest.length < 3) {
    throw malformed('key/value section is not framed by ^A');
  }
  const pairs = rest.slice(1, -2).split('\x01');
  const params = new Map<string, string>();
  let token: string | undefined;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw malformed('a key/value pair is malformed');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!KEY.test(key) || !VALUE.test(value)) throw malformed('a key or value has invalid characters');
    if (key === 'auth') {
      if (token !== undefined) throw malformed('auth appears twice');
      token = parseBearerAuth(value);
      if (token === undefined) throw malformed('auth is not a bearer token');
    } else {
      if (params.has(key)) throw malformed(`${key} appears twice`);
      params.set(key, value);
    }
  }
  if (token === undefined) throw malformed('auth is missing');
  const portText = params.get('port');
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw malformed('port is invalid');
    port = Number(portText);
  }
  return { user, token, host: params.get('host'), port, params };
}
