// Test helpers around the real oidc-provider authorization server (dev/authorization-server/).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuthorizationServer,
  type AuthorizationServerOptions,
  startAuthorizationServer,
} from '../../dev/authorization-server/index.ts';
import { type OAuthAccount, type OAuthAccountOptions, resolveAccount } from '../../src/oauth/account.ts';
import { deviceFlow } from '../../src/oauth/flows/device.ts';
import type { Sleep } from '../../src/oauth/flows/sleep.ts';
import type { TokenSet } from '../../src/oauth/token-set.ts';
import { removeTempTree, type TreeScanOptions } from './test-log.ts';

export type { AuthorizationServer };

export async function startTestAuthorizationServer(
  options: AuthorizationServerOptions = {},
): Promise<AuthorizationServer> {
  return startAuthorizationServer({ accessTokenTtl: 120, ...options });
}

/** The native public client of the server as a popgate account (device + browser flows). */
export function nativeAccount(
  as: AuthorizationServer,
  name = 'acct',
  extra: Partial<OAuthAccountOptions> = {},
): Promise<OAuthAccount> {
  return resolveAccount({
    name,
    issuer: as.issuer,
    clientId: as.clients.native.clientId,
    scopes: ['pop3', 'offline_access'],
    flow: 'device',
    http: { allowInsecureHttp: true },
    ...extra,
  });
}

/**
 * A `config.toml` section for a client-credentials account `name` of the test authorization
 * server (http on loopback, so `allow_insecure_http`), with `lines` appended (client auth keys).
 */
export function clientCredentialsAccountToml(
  as: AuthorizationServer,
  name: string,
  clientId: string,
  lines: readonly string[],
): string {
  return [
    `[accounts.${name}]`,
    `user = "${name}@example.test"`,
    `issuer = "${as.issuer}"`,
    `client_id = "${clientId}"`,
    'flow = "client-credentials"',
    'scopes = ["pop3"]',
    'allow_insecure_http = true',
    ...lines,
    '',
  ].join('\n');
}

/** A fast poll for tests: the device flow waits at most 50 ms between polls. */
export const quickSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) reject(signal.reason);
    else setTimeout(resolve, Math.min(ms, 50));
  });

/** Runs the device flow and approves it through the provider's pages as `user`. */
export async function deviceLogin(
  as: AuthorizationServer,
  account: OAuthAccount,
  user = 'alice@example.test',
): Promise<TokenSet> {
  let approval: Promise<void> = Promise.resolve();
  const tokens = await deviceFlow(account, {
    sleep: quickSleep,
    onPrompt: (prompt) => {
      approval = as.approveDevice(prompt.userCode, user);
    },
  });
  await approval;
  return tokens;
}

/** A temp dir removed by the returned cleanup. */
export async function tempDir(
  prefix = 'popgate-oauth-',
): Promise<{ dir: string; cleanup: (scan?: TreeScanOptions) => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // What popgate wrote there (token store, config, state) goes to the run's secret scan first.
  return { dir, cleanup: (scan) => removeTempTree(dir, scan) };
}

/** Every token string in a token set, for "never in plain text" checks. */
export function secretsOf(tokens: Pick<TokenSet, 'accessToken' | 'refreshToken'>): string[] {
  return [tokens.accessToken, ...(tokens.refreshToken ? [tokens.refreshToken] : [])];
}
