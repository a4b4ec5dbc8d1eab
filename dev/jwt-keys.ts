/**
 * JWT signing keys for tests and the demo (jose): a key pair (or HMAC secret) with its `kid`,
 * the public half as PEM and JWK, and a signer that writes RFC 7519 tokens.
 *
 * @example
 * ```ts
 * const key = await createSigningKey({ alg: 'RS256', kid: 'k1' });
 * const token = await key.sign({ iss: 'https://issuer.test', email: 'alice@example.test', exp });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { ConfigError } from '../src/errors.ts';
import { recordTestSecret } from './secret-ledger.ts';

/** Algorithms the dev signer supports (RFC 7518 section 3.1). */
export type DevJwtAlgorithm =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'ES256'
  | 'ES384'
  | 'HS256'
  | 'HS384'
  | 'HS512';

const ALGORITHMS: readonly DevJwtAlgorithm[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'ES256',
  'ES384',
  'HS256',
  'HS384',
  'HS512',
];

export interface SignOptions {
  /** `typ` header. Default `JWT` (Dovecot 2.3.19 refuses `at+jwt`); `null` omits it. */
  typ?: string | null;
  /** `kid` header. Default the key's kid; `null` omits it. */
  kid?: string | null;
  /** Extra protected-header fields (e.g. a forged `alg` is not possible here: use raw bytes). */
  header?: Record<string, unknown>;
}

export interface DevSigningKey {
  readonly alg: DevJwtAlgorithm;
  readonly kid: string;
  /**
   * What a verifier needs, in the form Dovecot's `local_validation_key_dict` reads: the SPKI
   * PEM public key, or for HS* the secret in base64 (then a secret: never log it).
   */
  readonly verificationKey: string;
  /** Public JWK with `kid`, `alg` and `use: sig` (for JWKS files); undefined for HS*. */
  readonly publicJwk: JWK | undefined;
  /** Signs `claims` as given (set `iss`, `exp`, ... yourself). */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
}

export interface CreateSigningKeyOptions {
  /** Default `RS256`. */
  alg?: DevJwtAlgorithm;
  /** Default a random 16-hex-digit id. */
  kid?: string;
}

/** Creates a fresh signing key. RSA keys are 2048 bits; EC keys use the curve the alg names. */
export async function createSigningKey(options: CreateSigningKeyOptions = {}): Promise<DevSigningKey> {
  const alg = options.alg ?? 'RS256';
  if (!ALGORITHMS.includes(alg)) {
    throw new ConfigError('ERR_CONFIG_INVALID', `unsupported JWT algorithm ${JSON.stringify(alg)}`, {
      key: 'alg',
    });
  }
  const kid = options.kid ?? randomBytes(8).toString('hex');
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(kid)) {
    // The kid becomes a file name in Dovecot's key dictionary.
    throw new ConfigError('ERR_CONFIG_INVALID', 'kid may hold only letters, digits and ._-', { key: 'kid' });
  }
  let signingKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'] | Uint8Array;
  let verificationKey: string;
  let publicJwk: JWK | undefined;
  if (alg.startsWith('HS')) {
    // Dovecot's key dictionary holds HMAC secrets base64-encoded (oauth2_lookup_hmac_key).
    const secret = randomBytes(48);
    signingKey = new Uint8Array(secret);
    verificationKey = secret.toString('base64');
    recordTestSecret(verificationKey);
  } else {
    const pair = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
    signingKey = pair.privateKey;
    verificationKey = await exportSPKI(pair.publicKey);
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  }

  async function sign(claims: JWTPayload, signOptions: SignOptions = {}): Promise<string> {
    const header: Record<string, unknown> = { ...signOptions.header, alg };
    const typ = signOptions.typ === undefined ? 'JWT' : signOptions.typ;
    if (typ !== null) header.typ = typ;
    const headerKid = signOptions.kid === undefined ? kid : signOptions.kid;
    if (headerKid !== null) header.kid = headerKid;
    const token = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(signingKey);
    recordTestSecret(token);
    return token;
  }

  return Object.freeze({ alg, kid, verificationKey, publicJwk, sign });
}
