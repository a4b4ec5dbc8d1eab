/**
 * The token store key kept in the OS keyring through `@napi-rs/keyring` (an optional dependency):
 * the macOS Keychain, the Windows Credential Manager, or on Linux the freedesktop Secret Service
 * on the D-Bus session bus (GNOME Keyring, KWallet). A random 256-bit key is stored base64 under
 * service `popgate`; popgate never sees the keyring's own password.
 *
 * The module is loaded lazily with a dynamic import, so a missing binary or a machine without a
 * Secret Service is detected by {@link KeyringKeySource.probe} and the caller can fall back to
 * the key file. On Linux the entry is pinned to the Secret Service: the library's default falls
 * back to the kernel keyring (keyutils), which forgets everything at logout or reboot, and a key
 * lost that way makes every token file unreadable.
 *
 * @example
 * ```ts
 * const keyring = new KeyringKeySource({ entry: `token-store:${dataDir}` });
 * const probe = await keyring.probe();
 * const keySource = probe.usable ? keyring : new KeyFileSource(keyPath);
 * ```
 */
import { randomBytes } from 'node:crypto';
import { TokenStoreError } from '../../errors.ts';
import { type KeySource, keyIdOf, type StoreKey } from './key-source.ts';

/** The part of `@napi-rs/keyring`'s `AsyncEntry` popgate uses. */
export interface KeyringEntry {
  getPassword(): Promise<string | null>;
  setPassword(password: string): Promise<void>;
  deleteCredential(): Promise<boolean>;
}

/** The part of the `@napi-rs/keyring` module popgate uses (injectable for tests). */
export interface KeyringModule {
  readonly AsyncEntry: new (
    service: string,
    username: string,
    options?: { linux?: { store?: 'secret-service' | 'keyutils' } },
  ) => KeyringEntry;
}

export interface KeyringKeySourceOptions {
  /** Keyring service name. Default `popgate`. */
  readonly service?: string;
  /**
   * Entry (user name) under the service. Default `token-store`; the CLI uses
   * `token-store:<data dir>` so that two data directories never share or overwrite a key.
   */
  readonly entry?: string;
  /** Loads the module. Default: `import('@napi-rs/keyring')`. */
  readonly load?: () => Promise<KeyringModule>;
  /** Per-operation timeout in milliseconds (a locked keyring may wait for a prompt). Default 10 000. */
  readonly timeoutMs?: number;
}

export type KeyringProbe =
  | { readonly usable: true; readonly hasKey: boolean }
  | { readonly usable: false; readonly reason: string };

const MODULE = '@napi-rs/keyring';

/** A short, secret-free reason from whatever the native module threw. */
function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
    return `${MODULE} is not installed (it is an optional dependency)`;
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').trim().slice(0, 200) || 'unknown error';
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the keyring did not answer ${what} within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Keeps a random 256-bit token store key in the OS keyring, creating it on first use. */
export class KeyringKeySource implements KeySource {
  readonly kind = 'keyring';
  readonly description: string;
  readonly service: string;
  readonly entry: string;
  readonly #load: () => Promise<KeyringModule>;
  readonly #timeoutMs: number;
  #entryPromise: Promise<KeyringEntry> | undefined;
  #cached: Promise<StoreKey> | undefined;

  constructor(options: KeyringKeySourceOptions = {}) {
    this.service = options.service ?? 'popgate';
    this.entry = options.entry ?? 'token-store';
    this.#load = options.load ?? (() => import(MODULE as string) as Promise<KeyringModule>);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.description = `OS keyring (service ${this.service}, entry ${this.entry})`;
  }

  #openEntry(): Promise<KeyringEntry> {
    this.#entryPromise ??= this.#load().then(
      (module) => {
        if (typeof module?.AsyncEntry !== 'function') throw new Error(`${MODULE} has no AsyncEntry`);
        return new module.AsyncEntry(this.service, this.entry, { linux: { store: 'secret-service' } });
      },
      (error: unknown) => {
        this.#entryPromise = undefined;
        throw error;
      },
    );
    return this.#entryPromise;
  }

  async #read(): Promise<string | null> {
    const entry = await this.#openEntry();
    return withTimeout(entry.getPassword(), this.#timeoutMs, 'a read');
  }

  /**
   * Whether the keyring can be used here: the module loads and the entry can be read (which needs
   * a reachable, unlocked Secret Service on Linux). Never throws; never creates a key.
   */
  async probe(): Promise<KeyringProbe> {
    try {
      const value = await this.#read();
      return { usable: true, hasKey: value !== null };
    } catch (error) {
      return { usable: false, reason: reasonOf(error) };
    }
  }

  getKey(): Promise<StoreKey> {
    this.#cached ??= this.#loadKey().catch((error: unknown) => {
      this.#cached = undefined;
      throw error;
    });
    return this.#cached;
  }

  async #loadKey(): Promise<StoreKey> {
    let stored: string | null;
    try {
      stored = await this.#read();
    } catch (error) {
      throw new TokenStoreError('ERR_TOKEN_STORE_KEY', `the OS keyring cannot be used: ${reasonOf(error)}`);
    }
    if (stored === null) {
      const key = randomBytes(32);
      try {
        const entry = await this.#openEntry();
        await withTimeout(entry.setPassword(key.toString('base64')), this.#timeoutMs, 'a write');
        // Read it back: a keyring that accepted the write but does not keep it would lose every token.
        stored = await this.#read();
      } catch (error) {
        throw new TokenStoreError(
          'ERR_TOKEN_STORE_KEY',
          `cannot store the token key in the OS keyring: ${reasonOf(error)}`,
        );
      }
      if (stored === null || !Buffer.from(stored, 'base64').equals(key)) {
        throw new TokenStoreError(
          'ERR_TOKEN_STORE_KEY',
          `the OS keyring did not keep the token key (${this.description})`,
        );
      }
      return { key, id: keyIdOf(key) };
    }
    const key = Buffer.from(stored.trim(), 'base64');
    if (key.length !== 32) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_KEY',
        `the OS keyring entry ${this.service}/${this.entry} does not hold a 32-byte base64 key`,
      );
    }
    return { key, id: keyIdOf(key) };
  }

  /** Deletes the key from the keyring (every token file it protects becomes unreadable). */
  async forget(): Promise<boolean> {
    this.#cached = undefined;
    const entry = await this.#openEntry();
    return withTimeout(entry.deleteCredential(), this.#timeoutMs, 'a delete');
  }
}
