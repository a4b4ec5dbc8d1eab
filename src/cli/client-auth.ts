// Client authentication for confidential clients, from the config file: `client_auth`
// (client_secret_basic | client_secret_post | private_key_jwt), `client_secret_file` and
// `private_key_file` (PEM, mode 0600 checked), `private_key_kid`. Secrets are read from files
// only, never from the config file itself or a flag, and never appear in a message.
import { createPrivateKey, type KeyObject, webcrypto } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import type { ClientAuthOptions } from '../oauth/account.ts';
import type { AccountConfig } from './config-schema.ts';
import type { CliContext } from './context.ts';

/** Reads a secret file, refusing one that is not a regular file of mode 0600 (or tighter). */
export async function readSecretFile(path: string, key: string): Promise<string> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch {
    throw new ConfigError('ERR_CONFIG_INVALID', `cannot read ${key} ${path}`, { key });
  }
  if (!info.isFile() || (info.mode & 0o077) !== 0) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${key} ${path} must be a regular file with mode 0600 (run chmod 600 ${path})`,
      { key },
    );
  }
  const text = (await readFile(path, 'utf8')).trim();
  if (!text) throw new ConfigError('ERR_CONFIG_INVALID', `${key} ${path} is empty`, { key });
  return text;
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The WebCrypto algorithm that signs RFC 7523 client assertions with this key (ES*, RS256, EdDSA). */
function signingAlgorithmFor(
  key: KeyObject,
  path: string,
): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm {
  const unsupported = (what: string): never => {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `private_key_file ${path}: ${what}; use an EC P-256/P-384/P-521, RSA (2048 bits or more) or Ed25519 key`,
      { key: 'private_key_file' },
    );
  };
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return curve ? { name: 'ECDSA', namedCurve: curve } : unsupported('unsupported EC curve');
    }
    case 'rsa':
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
        return unsupported('RSA key shorter than 2048 bits');
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    case 'ed25519':
      return { name: 'Ed25519' };
    default:
      return unsupported(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

/**
 * Imports a PEM private key (PKCS#8, or SEC1/PKCS#1) as a non-extractable WebCrypto signing key
 * for private_key_jwt (RFC 7523 §2.2). Encrypted PEM files are refused.
 */
export async function importPrivateKeyPem(pem: string, path: string): Promise<webcrypto.CryptoKey> {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // The library's message is not passed on: keep every byte of the file out of messages.
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `private_key_file ${path} is not an unencrypted PEM private key`,
      { key: 'private_key_file' },
    );
  }
  const algorithm = signingAlgorithmFor(key, path);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
}

/**
 * The account's client authentication. `client_auth` defaults to client_secret_basic when a
 * client secret file is set, private_key_jwt when a private key file is set, else none (a
 * public client).
 */
export async function clientAuthFor(
  account: AccountConfig,
  _ctx: Pick<CliContext, 'env'>,
): Promise<ClientAuthOptions> {
  const where = `account ${account.name}`;
  let method = account.clientAuth;
  if (method === undefined) {
    if (account.clientSecretFile !== undefined && account.privateKeyFile !== undefined) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `${where}: both "client_secret_file" and "private_key_file" are set; choose one with "client_auth"`,
        { key: 'client_auth' },
      );
    }
    if (account.clientSecretFile !== undefined) method = 'client_secret_basic';
    else if (account.privateKeyFile !== undefined) method = 'private_key_jwt';
    else return { method: 'none' };
  }
  if (method === 'private_key_jwt') {
    if (account.privateKeyFile === undefined) {
      throw new ConfigError(
        'ERR_CONFIG_MISSING',
        `${where}: client_auth = "private_key_jwt" needs "private_key_file" (a PEM private key, mode 0600)`,
        { key: 'private_key_file' },
      );
    }
    const path = account.privateKeyFile;
    const key = await importPrivateKeyPem(await readSecretFile(path, 'private_key_file'), path);
    return account.privateKeyKid !== undefined
      ? { method, key, kid: account.privateKeyKid }
      : { method, key };
  }
  if (account.clientSecretFile === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `${where}: client_auth = "${method}" needs "client_secret_file" (a file of mode 0600 holding the secret)`,
      { key: 'client_secret_file' },
    );
  }
  const secret = await readSecretFile(account.clientSecretFile, 'client_secret_file');
  return { method, secret };
}
