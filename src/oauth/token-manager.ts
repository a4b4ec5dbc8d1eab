/**
 * The token manager (architecture.md practices 6 and 7): hands out a valid access token, refreshing
 * ahead of expiry; one refresh at a time per account (in-process single flight plus the store's
 * cross-process lock); a rotated refresh token is persisted before the new access token is
 * handed out; `invalid_grant` marks the tokens stale (kept, not deleted) and asks for a new
 * login; transient failures retry with backoff and jitter and never touch stored tokens.
 *
 * Events on `node:diagnostics_channel` `popgate:oauth:refresh` ({ account, phase, code? }),
 * never with a token.
 */
import { channel } from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS } from '../diagnostics.ts';
import { OAuthError } from '../errors.ts';
import { type Logger, silentLogger } from '../observability/logger.ts';
import type { OAuthAccount } from './account.ts';
import { clientCredentialsFlow } from './flows/client-credentials.ts';
import { refreshFlow } from './flows/refresh.ts';
import { canRevoke, revokeToken } from './flows/revoke.ts';
import { realSleep, type Sleep } from './flows/sleep.ts';
import type { FlowName } from './providers/types.ts';
import type { StoredTokens, TokenStore, TokenStoreInfo } from './stores/types.ts';
import type { TokenSet } from './token-set.ts';

export const refreshChannel = channel(DIAGNOSTICS_CHANNELS.oauthRefresh.name);

export interface RetryOptions {
  /** Attempts in total (first try included). Default 4. */
  readonly attempts?: number;
  /** Base of the exponential backoff. Default 500 ms. */
  readonly baseDelayMs?: number;
  /** Cap of one backoff delay. Default 30 s. */
  readonly maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the error goes to the caller. Default 120 s. */
  readonly maxRetryAfterMs?: number;
}

export interface TokenManagerOptions {
  readonly store: TokenStore;
  /** Epoch milliseconds; inject a frozen clock in tests. */
  readonly clock?: () => number;
  readonly logger?: Logger;
  /**
   * How long before expiry to refresh. Default: the larger of 5 minutes and 10 % of the
   * lifetime, but at most half the lifetime (so a 2-minute token is not refreshed on every use).
   */
  readonly skewMs?: number | ((lifetimeMs: number) => number);
  readonly retry?: RetryOptions;
  readonly sleep?: Sleep;
  /** Random in [0, 1) for jitter. */
  readonly random?: () => number;
  /** Called (and awaited, errors ignored) when an account needs a new login. */
  readonly onReauthRequired?: (account: string, error: OAuthError) => void | Promise<void>;
}

/** A token handed out by the manager. `value` is a secret: never log it. */
export interface AccessToken {
  readonly value: string;
  readonly expiresAt: number | undefined;
  readonly scopes: readonly string[];
  /** True when this call obtained it from the authorization server. */
  readonly refreshed: boolean;
}

export type TokenHealth = 'ok' | 'expiring' | 'expired' | 'stale' | 'missing';

/** Everything `popgate token status` shows: no token, ever. */
export interface TokenStatus {
  readonly account: string;
  readonly health: TokenHealth;
  readonly expiresAt: number | undefined;
  readonly scopes: readonly string[];
  readonly hasRefreshToken: boolean;
  readonly flow: FlowName | undefined;
  readonly staleReason: string | undefined;
  readonly store: TokenStoreInfo;
}

export interface LogoutResult {
  /** True when the provider revoked the refresh token (RFC 7009). */
  readonly revoked: boolean;
  /** True when local tokens were deleted. */
  readonly deleted: boolean;
  /** When the provider cannot revoke: what the user does to withdraw consent. */
  readonly instructions: string | undefined;
}

const FIVE_MINUTES = 5 * 60 * 1000;

/** The default skew of the module doc. */
export function defaultSkew(lifetimeMs: number): number {
  return Math.min(Math.max(FIVE_MINUTES, lifetimeMs / 10), lifetimeMs / 2);
}

export class TokenManager {
  readonly #store: TokenStore;
  readonly #clock: () => number;
  readonly #logger: Logger;
  readonly #skew: (lifetimeMs: number) => number;
  readonly #retry: Required<RetryOptions>;
  readonly #sleep: Sleep;
  readonly #random: () => number;
  readonly #onReauthRequired: TokenManagerOptions['onReauthRequired'];
  readonly #inflight = new Map<string, Promise<AccessToken>>();

  constructor(options: TokenManagerOptions) {
    this.#store = options.store;
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger ?? silentLogger;
    const skew = options.skewMs;
    this.#skew = typeof skew === 'function' ? skew : typeof skew === 'number' ? () => skew : defaultSkew;
    this.#retry = Object.freeze({
      attempts: options.retry?.attempts ?? 4,
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 30_000,
      maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 120_000,
    });
    this.#sleep = options.sleep ?? realSleep;
    this.#random = options.random ?? Math.random;
    this.#onReauthRequired = options.onReauthRequired;
  }

  get store(): TokenStore {
    return this.#store;
  }

  /** True when `tokens` must be refreshed now (expired or inside the skew window). */
  needsRefresh(tokens: StoredTokens): boolean {
    if (tokens.expiresAt === undefined) return false;
    const lifetime = Math.max(0, tokens.expiresAt - tokens.obtainedAt);
    return this.#clock() >= tokens.expiresAt - this.#skew(lifetime);
  }

  /** Stores the result of a login flow, replacing whatever the account had (stale or not). */
  async saveLogin(account: OAuthAccount, tokens: TokenSet, flow: FlowName): Promise<void> {
    await this.#store.withLock(account.name, () =>
      this.#store.set(account.name, this.#record(account, tokens, flow)),
    );
  }

  /**
   * Returns a valid access token for the account, refreshing when it is within the skew of its
   * expiry or when `forceRefresh` is set (e.g. after the POP3 server answered `[AUTH]`).
   *
   * @example
   * ```ts
   * const { value } = await manager.getAccessToken(account);
   * ```
   */
  async getAccessToken(
    account: OAuthAccount,
    options: { forceRefresh?: boolean } = {},
  ): Promise<AccessToken> {
    const seen = await this.#read(account);
    if (!options.forceRefresh && !this.needsRefresh(seen)) return this.#handOut(seen, false);
    const pending = this.#inflight.get(account.name);
    if (pending) return pending;
    const flight = this.#store
      .withLock(account.name, () => this.#refreshLocked(account, seen))
      .finally(() => this.#inflight.delete(account.name));
    this.#inflight.set(account.name, flight);
    return flight;
  }

  async status(accountName: string): Promise<TokenStatus> {
    const tokens = await this.#store.get(accountName);
    const store = this.#store.info();
    if (!tokens) {
      return Object.freeze({
        account: accountName,
        health: 'missing',
        expiresAt: undefined,
        scopes: [],
        hasRefreshToken: false,
        flow: undefined,
        staleReason: undefined,
        store,
      });
    }
    let health: TokenHealth = 'ok';
    if (tokens.stale) health = 'stale';
    else if (tokens.expiresAt !== undefined && this.#clock() >= tokens.expiresAt) health = 'expired';
    else if (this.needsRefresh(tokens)) health = 'expiring';
    return Object.freeze({
      account: accountName,
      health,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes,
      hasRefreshToken: tokens.refreshToken !== undefined,
      flow: tokens.flow,
      staleReason: tokens.staleReason,
      store,
    });
  }

  /**
   * Revokes the refresh token at the provider (RFC 7009) when it has a revocation endpoint, then
   * deletes the local tokens. Without an endpoint (Microsoft) it deletes locally and returns the
   * provider's instructions for withdrawing consent. A failed revocation keeps the local tokens
   * (so the user can retry) unless `revoke: false`.
   */
  async logout(account: OAuthAccount, options: { revoke?: boolean } = {}): Promise<LogoutResult> {
    return this.#store.withLock(account.name, async () => {
      const tokens = await this.#store.get(account.name);
      let revoked = false;
      let instructions: string | undefined;
      if (tokens && options.revoke !== false) {
        if (canRevoke(account)) {
          const token = tokens.refreshToken ?? tokens.accessToken;
          await revokeToken(account, token, tokens.refreshToken ? 'refresh_token' : 'access_token', {
            clock: this.#clock,
          });
          revoked = true;
        } else {
          instructions =
            account.preset?.consentWithdrawal ??
            "This provider has no revocation endpoint: withdraw popgate's access in your account's security or connected-apps settings.";
        }
      }
      const deleted = await this.#store.delete(account.name);
      this.#logger.info({ account: account.name, revoked, deleted }, 'logged out');
      return Object.freeze({ revoked, deleted, instructions });
    });
  }

  async #read(account: OAuthAccount): Promise<StoredTokens> {
    const tokens = await this.#store.get(account.name);
    if (!tokens) {
      throw new OAuthError(
        'ERR_OAUTH_NO_TOKEN',
        `no token stored for account ${account.name}; run popgate login --account ${account.name}`,
        { account: account.name },
      );
    }
    if (tokens.stale) throw this.#reauthError(account, tokens.staleReason);
    return tokens;
  }

  #handOut(tokens: StoredTokens, refreshed: boolean): AccessToken {
    return Object.freeze({
      value: tokens.accessToken,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes,
      refreshed,
    });
  }

  #reauthError(account: OAuthAccount, reason: string | undefined): OAuthError {
    return new OAuthError(
      'ERR_OAUTH_REAUTH_REQUIRED',
      `account ${account.name} must log in again: the provider no longer accepts its refresh token${reason ? ` (${reason})` : ''}. Run: popgate login --account ${account.name}`,
      { account: account.name, oauthError: 'invalid_grant' },
    );
  }

  #record(account: OAuthAccount, tokens: TokenSet, flow: FlowName | undefined): StoredTokens {
    return Object.freeze({
      version: 1,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: tokens.expiresAt,
      obtainedAt: tokens.obtainedAt,
      scopes: tokens.scopes,
      stale: false,
      ...(flow !== undefined ? { flow } : {}),
      issuer: account.as.issuer,
      clientId: account.client.client_id,
    });
  }

  async #refreshLocked(account: OAuthAccount, seen: StoredTokens): Promise<AccessToken> {
    // Another process (or an earlier flight) may have refreshed while we waited for the lock.
    const current = await this.#read(account);
    if (current.accessToken !== seen.accessToken && !this.needsRefresh(current)) {
      return this.#handOut(current, false);
    }
    refreshChannel.publish({ account: account.name, phase: 'start' });
    try {
      const fresh = await this.#withRetry(account, () => this.#obtain(account, current));
      const record = this.#record(account, fresh, current.flow);
      // Persist first: with rotation the old refresh token is already dead at the provider.
      await this.#store.set(account.name, record);
      refreshChannel.publish({ account: account.name, phase: 'success' });
      this.#logger.info({ account: account.name, expiresAt: record.expiresAt }, 'access token refreshed');
      return this.#handOut(record, true);
    } catch (error) {
      const failure =
        error instanceof OAuthError
          ? error
          : new OAuthError('ERR_OAUTH_TRANSIENT', `refreshing account ${account.name} failed unexpectedly`, {
              account: account.name,
              cause: error,
            });
      refreshChannel.publish({ account: account.name, phase: 'failure', code: failure.code });
      if (failure.code === 'ERR_OAUTH_REAUTH_REQUIRED') {
        const reason = failure.oauthError === 'invalid_grant' ? 'invalid_grant' : failure.oauthError;
        await this.#store.set(
          account.name,
          Object.freeze({ ...current, stale: true, staleReason: reason ?? 'invalid_grant' }),
        );
        const reauth = this.#reauthError(account, reason);
        this.#logger.warn(
          { account: account.name, code: reauth.code },
          'refresh token refused: new login needed',
        );
        await this.#notify(account.name, reauth);
        throw reauth;
      }
      this.#logger.warn(
        { account: account.name, code: failure.code, status: failure.status },
        'token refresh failed',
      );
      throw failure;
    }
  }

  async #obtain(account: OAuthAccount, current: StoredTokens): Promise<TokenSet> {
    if (current.refreshToken !== undefined) {
      return refreshFlow(account, current.refreshToken, current.scopes, { clock: this.#clock });
    }
    if (current.flow === 'client-credentials' || account.flow === 'client-credentials') {
      return clientCredentialsFlow(account, { clock: this.#clock });
    }
    throw new OAuthError(
      'ERR_OAUTH_REAUTH_REQUIRED',
      `account ${account.name} has no refresh token and its access token expired. Run: popgate login --account ${account.name}`,
      { account: account.name, oauthError: 'no_refresh_token' },
    );
  }

  async #withRetry<T>(account: OAuthAccount, operation: () => Promise<T>): Promise<T> {
    const { attempts, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.#retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!(error instanceof OAuthError) || error.code !== 'ERR_OAUTH_TRANSIENT' || attempt >= attempts)
          throw error;
        let delay: number;
        if (error.retryAfter !== undefined) {
          if (error.retryAfter * 1000 > maxRetryAfterMs) throw error;
          delay = error.retryAfter * 1000 + Math.floor(this.#random() * baseDelayMs);
        } else {
          // Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^n)].
          delay = Math.floor(this.#random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt));
        }
        this.#logger.warn(
          { account: account.name, attempt, status: error.status, delayMs: delay },
          'transient failure talking to the authorization server; retrying',
        );
        await this.#sleep(delay);
      }
    }
  }

  async #notify(account: string, error: OAuthError): Promise<void> {
    if (!this.#onReauthRequired) return;
    try {
      await this.#onReauthRequired(account, error);
    } catch (notifyError) {
      this.#logger.warn(
        { account, error: notifyError instanceof Error ? notifyError.message : 'unknown' },
        'the re-login notification failed',
      );
    }
  }
}
