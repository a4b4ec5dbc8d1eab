/**
 * The token store interface. Every implementation passes one contract test suite
 * (test/unit/oauth-store-contract.test.ts), as oidc-provider's adapters do.
 */
import { ConfigError } from '../../errors.ts';

/** What is kept per account. Holds secrets: never log it. */
export interface StoredTokens {
  readonly version: 1;
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  /** Epoch milliseconds, or undefined when the server gave no lifetime. */
  readonly expiresAt: number | undefined;
  readonly obtainedAt: number;
  readonly scopes: readonly string[];
  /** True once the provider refused the refresh token (invalid_grant): a new login is needed. */
  readonly stale: boolean;
  readonly staleReason?: string;
  /** The flow that obtained the tokens; client credentials renew without a refresh token. */
  readonly flow?: 'device' | 'browser' | 'client-credentials';
  readonly issuer?: string;
  readonly clientId?: string;
}

/** Safe to print: where tokens live and how they are protected. */
export interface TokenStoreInfo {
  readonly kind: 'memory' | 'encrypted-file';
  readonly location?: string;
  /** Which key protects the files: `key-file`, `passphrase` or `keyring`. */
  readonly keySource?: string;
}

export interface TokenStore {
  info(): TokenStoreInfo;
  get(account: string): Promise<StoredTokens | undefined>;
  /** Replaces the account's tokens; durable when the promise resolves. */
  set(account: string, tokens: StoredTokens): Promise<void>;
  /** Removes the account's tokens; false when there were none. */
  delete(account: string): Promise<boolean>;
  list(): Promise<string[]>;
  /**
   * Runs `fn` holding the account's lock — across processes for stores that live on disk — so
   * that two refreshes never race (a rotated refresh token can be used once only).
   */
  withLock<T>(account: string, fn: () => Promise<T>): Promise<T>;
}

const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Account names as the config allows them; they become file names, so nothing else passes. */
export function checkAccountName(account: string): void {
  if (typeof account !== 'string' || !ACCOUNT_NAME.test(account)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `invalid account name ${JSON.stringify(String(account).slice(0, 64))}: use letters, digits, ".", "_" and "-"`,
      { key: 'account' },
    );
  }
}

/** Validates a decoded record field by field (the same checks for every store). */
export function parseStoredTokens(value: unknown): StoredTokens | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const optionalNumber = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isFinite(x));
  const optionalString = (x: unknown) => x === undefined || typeof x === 'string';
  if (
    v.version !== 1 ||
    typeof v.accessToken !== 'string' ||
    !optionalString(v.refreshToken) ||
    !optionalNumber(v.expiresAt) ||
    typeof v.obtainedAt !== 'number' ||
    !Array.isArray(v.scopes) ||
    v.scopes.some((s) => typeof s !== 'string') ||
    typeof v.stale !== 'boolean' ||
    !optionalString(v.staleReason) ||
    !(
      v.flow === undefined ||
      v.flow === 'device' ||
      v.flow === 'browser' ||
      v.flow === 'client-credentials'
    ) ||
    !optionalString(v.issuer) ||
    !optionalString(v.clientId)
  ) {
    return undefined;
  }
  return Object.freeze({
    ...(v as unknown as StoredTokens),
    scopes: Object.freeze([...(v.scopes as string[])]),
  });
}

/** A plain JSON-able copy (drops undefined fields). */
export function serializeStoredTokens(tokens: StoredTokens): string {
  return JSON.stringify({
    version: 1,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: tokens.expiresAt,
    obtainedAt: tokens.obtainedAt,
    scopes: [...tokens.scopes],
    stale: tokens.stale,
    staleReason: tokens.staleReason,
    flow: tokens.flow,
    issuer: tokens.issuer,
    clientId: tokens.clientId,
  });
}
