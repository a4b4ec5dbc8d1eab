/**
 * Refresh token grant (RFC 6749 §6). One request, checked; retries and single flight live in
 * the token manager. A response without a new refresh token keeps the old one (no rotation).
 */
import * as oauth from 'oauth4webapi';
import type { OAuthAccount } from '../account.ts';
import { throwIfTransient, toOAuthError } from '../errors-map.ts';
import { type TokenSet, toTokenSet } from '../token-set.ts';

export async function refreshFlow(
  account: OAuthAccount,
  refreshToken: string,
  previousScopes: readonly string[],
  options: { clock?: () => number } = {},
): Promise<TokenSet> {
  const clock = options.clock ?? Date.now;
  try {
    const response = await oauth.refreshTokenGrantRequest(
      account.as,
      account.client,
      account.clientAuth,
      refreshToken,
      {
        ...account.requestOptions,
        ...(account.resource !== undefined ? { additionalParameters: { resource: account.resource } } : {}),
      },
    );
    throwIfTransient(response, 'token endpoint', clock(), account.name);
    const result = await oauth.processRefreshTokenResponse(account.as, account.client, response);
    const tokens = toTokenSet(result, previousScopes, clock());
    return tokens.refreshToken === undefined ? Object.freeze({ ...tokens, refreshToken }) : tokens;
  } catch (error) {
    throw toOAuthError(error, 'token endpoint', account.name);
  }
}
