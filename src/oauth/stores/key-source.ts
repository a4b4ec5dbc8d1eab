/**
 * Where the token store's 256-bit key comes from. Pluggable: a key file, a passphrase through
 * scrypt, or the OS keyring (keyring-key-source.ts, over the optional `@napi-rs/keyring`);
 * select-key-source.ts chooses among them.
 */
import { createHmac, randomBytes, type ScryptOptions, scrypt as scryptCallback } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TokenStoreError } from '../../errors.ts';
import { checkPrivateFile, ensurePrivateDir, writeFileAtomic } from './fs-safe.ts';

/** A key and a short public id (an HMAC of the key) stored beside ciphertexts to spot a wrong key. */
export interface StoreKey {
  readonly key: Buffer;
  readonly id: string;
}

export interface KeySource {
  /** `key-file`, `passphrase`, `keyring`, ...: shown by `popgate token status`. */
  readonly kind: string;
  /** Human description without secrets, e.g. the key file path. */
  readonly description: string;
  getKey(): Promise<StoreKey>;
}

/** The key id: HMAC-SHA-256 of a fixed label, 8 bytes, hex. Reveals nothing usable about the key. */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key)
    .update('popgate token store key id v1')
    .digest()
    .subarray(0, 8)
    .toString('hex');
}

/** Reads a 32-byte base64 key from a 0600 file, creating one (random) when it is missing. */
export class KeyFileSource implements KeySource {
  readonly kind = 'key-file';
  readonly description: string;
  readonly #path: string;
  #cached: Promise<StoreKey> | undefined;

  constructor(path: string) {
    this.#path = path;
    this.description = `key file ${path}`;
  }

  getKey(): Promise<StoreKey> {
    this.#cached ??= this.#load().catch((error: unknown) => {
      this.#cached = undefined;
      throw error;
    });
    return this.#cached;
  }

  async #load(): Promise<StoreKey> {
    await ensurePrivateDir(dirname(this.#path));
    let text: string;
    try {
      await checkPrivateFile(this.#path);
      text = await readFile(this.#path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (error instanceof TokenStoreError) throw error;
        throw new TokenStoreError('ERR_TOKEN_STORE_KEY', `cannot read the key file ${this.#path}`);
      }
      const key = randomBytes(32);
      await writeFileAtomic(this.#path, `${key.toString('base64')}\n`);
      return { key, id: keyIdOf(key) };
    }
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== 32) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_KEY',
        `the key file ${this.#path} does not hold a 32-byte base64 key`,
      );
    }
    return { key, id: keyIdOf(key) };
  }
}

const scrypt = (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    scryptCallback(password, salt, 32, options, (error, key) => (error ? reject(error) : resolve(key)));
  });

/** scrypt parameters: N=2^15, r=8, p=1 (32 MiB, about 0.1 s here), per RFC 7914 guidance. */
export const SCRYPT_PARAMS: Readonly<ScryptOptions> = Object.freeze({
  N: 2 ** 15,
  r: 8,
  p: 1,
  maxmem: 64 * 1024 * 1024,
});

/**
 * Derives the key from a passphrase with scrypt and a random salt kept in `saltPath` (0600). The
 * CLI passes `POPGATE_PASSPHRASE` or a prompted passphrase; the library never reads the env.
 */
export class PassphraseKeySource implements KeySource {
  readonly kind = 'passphrase';
  readonly description: string;
  readonly #passphrase: string;
  readonly #saltPath: string;
  #cached: Promise<StoreKey> | undefined;

  constructor(passphrase: string, saltPath: string) {
    if (typeof passphrase !== 'string' || passphrase.length === 0) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_KEY',
        'the token store passphrase is empty; set POPGATE_PASSPHRASE or enter one',
      );
    }
    this.#passphrase = passphrase;
    this.#saltPath = saltPath;
    this.description = `passphrase (scrypt, salt ${saltPath})`;
  }

  getKey(): Promise<StoreKey> {
    this.#cached ??= this.#derive().catch((error: unknown) => {
      this.#cached = undefined;
      throw error;
    });
    return this.#cached;
  }

  async #derive(): Promise<StoreKey> {
    await ensurePrivateDir(dirname(this.#saltPath));
    let salt: Buffer;
    try {
      await checkPrivateFile(this.#saltPath);
      salt = Buffer.from((await readFile(this.#saltPath, 'utf8')).trim(), 'base64');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (error instanceof TokenStoreError) throw error;
        throw new TokenStoreError('ERR_TOKEN_STORE_KEY', `cannot read the salt file ${this.#saltPath}`);
      }
      salt = randomBytes(16);
      await writeFileAtomic(this.#saltPath, `${salt.toString('base64')}\n`);
    }
    if (salt.length < 16)
      throw new TokenStoreError('ERR_TOKEN_STORE_KEY', `the salt file ${this.#saltPath} is corrupt`);
    const key = await scrypt(this.#passphrase, salt, SCRYPT_PARAMS);
    return { key, id: keyIdOf(key) };
  }
}
