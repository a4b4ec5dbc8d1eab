/** Token revocation (RFC 7009 §2.1). */
import * as oauth from 'oauth4webapi';
import type { OAuthAccount } from '../account.ts';
import { throwIfTransient, toOAuthError } from '../errors-map.ts';

/** True when the server has a revocation endpoint this account can use. */
export function canRevoke(account: OAuthAccount): boolean {
  return typeof account.as.revocation_endpoint === 'string';
}

/** Revokes one token. RFC 7009 §2.2: an unknown or already revoked token also answers 200. */
export async function revokeToken(
  account: OAuthAccount,
  token: string,
  hint: 'refresh_token' | 'access_token',
  options: { clock?: () => number } = {},
): Promise<void> {
  const clock = options.clock ?? Date.now;
  try {
    const response = await oauth.revocationRequest(account.as, account.client, account.clientAuth, token, {
      ...account.requestOptions,
      additionalParameters: { token_type_hint: hint },
    });
    throwIfTransient(response, 'revocation endpoint', clock(), account.name);
    await oauth.processRevocationResponse(response);
  } catch (error) {
    throw toOAuthError(error, 'revocation endpoint', account.name);
  }
}
