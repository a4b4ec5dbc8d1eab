/**
 * Client credentials grant (RFC 6749 §4.4) for app-only mailboxes, with client_secret_basic,
 * client_secret_post or private_key_jwt (RFC 7523 §2.2) client authentication.
 */
import * as oauth from 'oauth4webapi';
import { OAuthError } from '../../errors.ts';
import { type OAuthAccount, scopeParameters } from '../account.ts';
import { throwIfTransient, toOAuthError } from '../errors-map.ts';
import { type TokenSet, toTokenSet } from '../token-set.ts';

/** Requests an app-only access token. There is no refresh token: the manager asks again. */
export async function clientCredentialsFlow(
  account: OAuthAccount,
  options: { clock?: () => number } = {},
): Promise<TokenSet> {
  const clock = options.clock ?? Date.now;
  if (account.clientAuthMethod === 'none') {
    throw new OAuthError(
      'ERR_OAUTH_INVALID_CLIENT',
      `account ${account.name}: the client credentials flow needs a client secret or private key`,
      { account: account.name },
    );
  }
  try {
    const response = await oauth.clientCredentialsGrantRequest(
      account.as,
      account.client,
      account.clientAuth,
      scopeParameters(account),
      account.requestOptions,
    );
    throwIfTransient(response, 'token endpoint', clock(), account.name);
    const result = await oauth.processClientCredentialsResponse(account.as, account.client, response);
    const tokens = toTokenSet(result, account.scopes, clock());
    // RFC 6749 §4.4.3: a refresh token SHOULD NOT be included; never keep one if sent.
    return Object.freeze({ ...tokens, refreshToken: undefined });
  } catch (error) {
    throw toOAuthError(error, 'token endpoint', account.name);
  }
}
