/**
 * Device authorization grant (RFC 8628): ask for a user code, show it with the verification URL,
 * then poll the token endpoint at the server's interval — `authorization_pending` keeps polling,
 * `slow_down` adds 5 seconds (§3.5), `access_denied` and `expired_token` end the flow.
 */
import * as oauth from 'oauth4webapi';
import { OAuthError } from '../../errors.ts';
import { type OAuthAccount, scopeParameters } from '../account.ts';
import { throwIfTransient, toOAuthError } from '../errors-map.ts';
import { type TokenSet, toTokenSet } from '../token-set.ts';
import { realSleep, type Sleep } from './sleep.ts';

/** What the user needs to approve the login. Contains no secret (the device code stays inside). */
export interface DevicePrompt {
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly expiresIn: number;
}

export interface DeviceFlowOptions {
  /** Called once with the code to show. */
  readonly onPrompt: (prompt: DevicePrompt) => void | Promise<void>;
  readonly signal?: AbortSignal;
  readonly clock?: () => number;
  readonly sleep?: Sleep;
}

const MAX_POLLS = 2000;

/**
 * Runs the device flow to the end and returns the checked token set.
 *
 * @example
 * ```ts
 * const tokens = await deviceFlow(account, { onPrompt: (p) => console.log(p.verificationUri, p.userCode) });
 * ```
 */
export async function deviceFlow(account: OAuthAccount, options: DeviceFlowOptions): Promise<TokenSet> {
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? realSleep;
  const what = 'device authorization endpoint';
  if (typeof account.as.device_authorization_endpoint !== 'string') {
    throw new OAuthError(
      'ERR_OAUTH_FLOW_UNSUPPORTED',
      `the authorization server of account ${account.name} has no device authorization endpoint; use the browser flow`,
      { account: account.name },
    );
  }
  let device: oauth.DeviceAuthorizationResponse;
  try {
    const response = await oauth.deviceAuthorizationRequest(
      account.as,
      account.client,
      account.clientAuth,
      { ...account.authorizationParams, ...scopeParameters(account) },
      account.requestOptions,
    );
    throwIfTransient(response, what, clock(), account.name);
    device = await oauth.processDeviceAuthorizationResponse(account.as, account.client, response);
  } catch (error) {
    throw toOAuthError(error, what, account.name);
  }
  for (const [field, value] of [
    ['device_code', device.device_code],
    ['user_code', device.user_code],
    ['verification_uri', device.verification_uri],
  ] as const) {
    if (typeof value !== 'string' || value.length === 0) {
      throw new OAuthError(
        'ERR_OAUTH_RESPONSE',
        `the device authorization response field "${field}" is missing`,
      );
    }
  }
  if (typeof device.expires_in !== 'number' || device.expires_in <= 0) {
    throw new OAuthError(
      'ERR_OAUTH_RESPONSE',
      'the device authorization response field "expires_in" is invalid',
    );
  }
  await options.onPrompt(
    Object.freeze({
      userCode: device.user_code,
      verificationUri: device.verification_uri,
      verificationUriComplete:
        typeof device.verification_uri_complete === 'string' ? device.verification_uri_complete : undefined,
      expiresIn: device.expires_in,
    }),
  );
  let interval = typeof device.interval === 'number' && device.interval > 0 ? device.interval : 5;
  const deadline = clock() + device.expires_in * 1000;
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    await sleep(interval * 1000, options.signal);
    if (clock() > deadline) break;
    let response: Response;
    try {
      response = await oauth.deviceCodeGrantRequest(
        account.as,
        account.client,
        account.clientAuth,
        device.device_code,
        account.requestOptions,
      );
    } catch (error) {
      throw toOAuthError(error, 'token endpoint', account.name);
    }
    if (response.status >= 500 || response.status === 429) {
      // A hiccup while the user is approving: wait and poll again (RFC 8628 §3.5 leaves it open).
      interval += 5;
      await response.body?.cancel();
      continue;
    }
    try {
      const result = await oauth.processDeviceCodeResponse(account.as, account.client, response);
      return toTokenSet(result, account.scopes, clock());
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError) {
        if (error.error === 'authorization_pending') continue;
        if (error.error === 'slow_down') {
          interval += 5;
          continue;
        }
        if (error.error === 'access_denied') {
          throw new OAuthError(
            'ERR_OAUTH_ACCESS_DENIED',
            `the login for account ${account.name} was denied at the provider; run popgate login --account ${account.name} again to retry`,
            { account: account.name, oauthError: 'access_denied' },
          );
        }
        if (error.error === 'expired_token') break;
      }
      throw toOAuthError(error, 'token endpoint', account.name);
    }
  }
  throw new OAuthError(
    'ERR_OAUTH_EXPIRED',
    `the device code for account ${account.name} expired before it was approved; run popgate login --account ${account.name} again`,
    { account: account.name, oauthError: 'expired_token' },
  );
}
