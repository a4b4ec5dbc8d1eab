import { createPublicKey, generateKeyPairSync, type JsonWebKey, randomUUID } from 'node:crypto';

/** One RS256 signing key of the provider: the private JWK it signs with, the public PEM it shows. */
export interface SigningKey {
  readonly jwk: JsonWebKey & { kid: string; alg: string; use: string };
  readonly pem: string;
}

export function newSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  return {
    jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The JWK of a public key (for tests that need to verify without the JWKS endpoint). */
export function publicJwkOf(pem: string): JsonWebKey {
  return createPublicKey(pem).export({ format: 'jwk' });
}
