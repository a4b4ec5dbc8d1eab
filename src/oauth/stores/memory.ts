/** In-memory token store for library users who keep tokens elsewhere, and for tests. */
import { TokenStoreError } from '../../errors.ts';
import {
  checkAccountName,
  parseStoredTokens,
  type StoredTokens,
  serializeStoredTokens,
  type TokenStore,
  type TokenStoreInfo,
} from './types.ts';

export class MemoryTokenStore implements TokenStore {
  readonly #records = new Map<string, string>();
  readonly #locks = new Map<string, Promise<unknown>>();

  info(): TokenStoreInfo {
    return Object.freeze({ kind: 'memory' });
  }

  async get(account: string): Promise<StoredTokens | undefined> {
    checkAccountName(account);
    const text = this.#records.get(account);
    if (text === undefined) return undefined;
    const parsed = parseStoredTokens(JSON.parse(text));
    if (!parsed)
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_TAMPERED',
        `the stored tokens of account ${account} are corrupt`,
      );
    return parsed;
  }

  async set(account: string, tokens: StoredTokens): Promise<void> {
    checkAccountName(account);
    const text = serializeStoredTokens(tokens);
    if (!parseStoredTokens(JSON.parse(text))) {
      throw new TokenStoreError(
        'ERR_TOKEN_STORE_IO',
        `refusing to store an invalid token record for account ${account}`,
      );
    }
    this.#records.set(account, text);
  }

  async delete(account: string): Promise<boolean> {
    checkAccountName(account);
    return this.#records.delete(account);
  }

  async list(): Promise<string[]> {
    return [...this.#records.keys()].sort();
  }

  /** An in-process mutex per account (a memory store is never shared across processes). */
  async withLock<T>(account: string, fn: () => Promise<T>): Promise<T> {
    checkAccountName(account);
    const previous = this.#locks.get(account) ?? Promise.resolve();
    let release: () => void = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const chained = previous.then(() => mine);
    this.#locks.set(account, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(account) === chained) this.#locks.delete(account);
    }
  }
}
