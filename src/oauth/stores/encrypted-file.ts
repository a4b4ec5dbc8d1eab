/**
 * The default token store: one file per account, AES-256-GCM with a fresh 96-bit nonce per
 * write, the account name (and key id) as associated data so a file moved to another account's
 * name fails authentication; written atomically with mode 0600 in a 0700 directory; looser modes
 * refused. A wrong key is told apart from tampering by the key id in the envelope.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenStoreError } from '../../errors.ts';
import { acquireFileLock, type FileLockOptions } from './file-lock.ts';
import { checkPrivateDir, checkPrivateFile, ensurePrivateDir, writeFileAtomic } from './fs-safe.ts';
import type { KeySource } from './key-source.ts';
import {
  checkAccountName,
  parseStoredTokens,
  type StoredTokens,
  serializeStoredTokens,
  type TokenStore,
  type TokenStoreInfo,
} from './types.ts';

export interface EncryptedFileStoreOptions {
  /** Directory of the token files (created 0700). */
  readonly dir: string;
  readonly keySource: KeySource;
  readonly lock?: FileLockOptions;
}

const SUFFIX = '.token';
const FORMAT = 'popgate-token-v1';

interface Envelope {
  format: typeof FORMAT;
  alg: 'A256GCM';
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

const aad = (account: string, kid: string): Buffer => Buffer.from(`${FORMAT}\0${account}\0${kid}`, 'utf8');

export class EncryptedFileTokenStore implements TokenStore {
  readonly #dir: string;
  readonly #keySource: KeySource;
  readonly #lock: FileLockOptions;

  constructor(options: EncryptedFileStoreOptions) {
    this.#dir = options.dir;
    this.#keySource = options.keySource;
    this.#lock = Object.freeze({ ...(options.lock ?? {}) });
  }

  info(): TokenStoreInfo {
    return Object.freeze({ kind: 'encrypted-file', location: this.#dir, keySource: this.#keySource.kind });
  }

  /** The file that holds an account's tokens. */
  fileFor(account: string): string {
    checkAccountName(account);
    return join(this.#dir, `${account}${SUFFIX}`);
  }

  async get(account: string): Promise<StoredTokens | undefined> {
    const file = this.fileFor(account);
    try {
      await checkPrivateDir(this.#dir);
    } catch (error) {
      if (
        error instanceof TokenStoreError &&
        error.code === 'ERR_TOKEN_STORE_IO' &&
        !(await this.#dirExists())
      )
        return undefined;
      throw error;
    }
    let text: string;
    try {
      await checkPrivateFile(file);
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (error instanceof TokenStoreError) throw error;
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_IO',
        `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    return this.#decrypt(account, file, text);
  }

  async set(account: string, tokens: StoredTokens): Promise<void> {
    const file = this.fileFor(account);
    const plaintext = serializeStoredTokens(tokens);
    if (!parseStoredTokens(JSON.parse(plaintext))) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_IO',
        `refusing to store an invalid token record for account ${account}`,
      );
    }
    await ensurePrivateDir(this.#dir);
    const { key, id } = await this.#keySource.getKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad(account, id));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const envelope: Envelope = {
      format: FORMAT,
      alg: 'A256GCM',
      kid: id,
      iv: iv.toString('base64url'),
      ct: ct.toString('base64url'),
      tag: cipher.getAuthTag().toString('base64url'),
    };
    await writeFileAtomic(file, `${JSON.stringify(envelope)}\n`);
  }

  async delete(account: string): Promise<boolean> {
    const file = this.fileFor(account);
    try {
      await unlink(file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_IO',
        `cannot delete ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }

  async list(): Promise<string[]> {
    if (!(await this.#dirExists())) return [];
    await checkPrivateDir(this.#dir);
    const names = await readdir(this.#dir);
    return names
      .filter((name) => name.endsWith(SUFFIX) && !name.startsWith('.'))
      .map((name) => name.slice(0, -SUFFIX.length))
      .sort();
  }

  async withLock<T>(account: string, fn: () => Promise<T>): Promise<T> {
    const file = this.fileFor(account);
    await ensurePrivateDir(this.#dir);
    const release = await acquireFileLock(`${file}.lock`, `account ${account}`, this.#lock);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  async #dirExists(): Promise<boolean> {
    try {
      await readdir(this.#dir);
      return true;
    } catch {
      return false;
    }
  }

  async #decrypt(account: string, file: string, text: string): Promise<StoredTokens> {
    const tampered = (): TokenStoreError =>
      new TokenStoreError(
        'ERR_TOKEN_STORE_TAMPERED',
        `${file} failed authentication: it was modified, corrupted or copied from another account. Nothing was decrypted; run popgate login --account ${account} to replace it`,
      );
    let envelope: Partial<Envelope>;
    try {
      envelope = JSON.parse(text) as Partial<Envelope>;
    } catch {
      throw tampered();
    }
    if (
      typeof envelope !== 'object' ||
      envelope === null ||
      envelope.format !== FORMAT ||
      envelope.alg !== 'A256GCM' ||
      typeof envelope.kid !== 'string' ||
      typeof envelope.iv !== 'string' ||
      typeof envelope.ct !== 'string' ||
      typeof envelope.tag !== 'string'
    ) {
      throw tampered();
    }
    const { key, id } = await this.#keySource.getKey();
    if (envelope.kid !== id) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_KEY',
        `${file} was encrypted with a different key than the current ${this.#keySource.description}: wrong passphrase or key file? Nothing was changed or deleted`,
      );
    }
    const iv = Buffer.from(envelope.iv, 'base64url');
    const tag = Buffer.from(envelope.tag, 'base64url');
    if (iv.length !== 12 || tag.length !== 16) throw tampered();
    let plaintext: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(aad(account, id));
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([
        decipher.update(Buffer.from(envelope.ct, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw tampered();
    }
    let parsed: StoredTokens | undefined;
    try {
      parsed = parseStoredTokens(JSON.parse(plaintext));
    } catch {
      parsed = undefined;
    }
    if (!parsed) throw tampered();
    return parsed;
  }
}
