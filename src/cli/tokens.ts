// The tokens every CLI command presents, from one place: an account's token comes from its
// token_command, its token_file, or popgate's token manager (the encrypted store, refreshed ahead
// of expiry). `popgate fetch`, `popgate doctor` and the proxy ask tokenProviderFor; login, logout
// and `token` open the store with openTokens.
import { join } from 'node:path';
import type { TokenProvider } from '../client/pop3-client.ts';
import { ConfigError } from '../errors.ts';
import { tokenCommandProvider, tokenFileProvider } from '../fetch/token-source.ts';
import { readCaFile } from '../internal/ca-file.ts';
import type { OAuthAccountOptions } from '../oauth/account.ts';
import { resolveAccount } from '../oauth/account.ts';
import { runNotifyCommand } from '../oauth/notify.ts';
import { EncryptedFileTokenStore } from '../oauth/stores/encrypted-file.ts';
import type { KeySourceSelection } from '../oauth/stores/select-key-source.ts';
import { TokenManager } from '../oauth/token-manager.ts';
import { clientAuthFor } from './client-auth.ts';
import type { AccountConfig } from './config.ts';
import type { CliContext } from './context.ts';
import { type KeySourceFlags, selectCliKeySource } from './token-key.ts';

/** Where token files live: `$XDG_DATA_HOME/popgate/tokens`. */
export function tokenDir(ctx: Pick<CliContext, 'paths'>): string {
  return join(ctx.paths.dataDir, 'tokens');
}

/** The token manager for CLI commands, its key source choice, and the account's notify command. */
export interface OpenedTokens {
  readonly manager: TokenManager;
  readonly keys: KeySourceSelection;
}

/**
 * Opens the encrypted token store with the key source chosen for this run (see token-key.ts)
 * and the token manager on it. A note about the key (the keyring could not be used) goes to
 * stderr.
 */
export async function openTokens(
  ctx: Pick<CliContext, 'paths' | 'env' | 'stdin' | 'stderr'>,
  account?: AccountConfig,
  flags: KeySourceFlags = {},
): Promise<OpenedTokens> {
  const keys = await selectCliKeySource(ctx, flags);
  if (keys.note) ctx.stderr.write(`popgate: note: ${keys.note}\n`);
  const notify = account?.notifyCommand;
  const store = new EncryptedFileTokenStore({ dir: tokenDir(ctx), keySource: keys.source });
  const manager = new TokenManager({
    store,
    ...(notify ? { onReauthRequired: (name: string) => runNotifyCommand(notify, name) } : {}),
  });
  return { manager, keys };
}

/** Maps a validated config account onto the library's explicit options. */
export async function accountOptionsFor(
  account: AccountConfig,
  ctx: Pick<CliContext, 'env'>,
): Promise<OAuthAccountOptions> {
  if (account.clientId === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `account ${account.name}: "client_id" is required for popgate's OAuth login (register an app; see docs/providers/)`,
      { key: 'client_id' },
    );
  }
  const clientAuth = await clientAuthFor(account, ctx);
  const endpoints = {
    ...(account.authorizationEndpoint ? { authorization: account.authorizationEndpoint } : {}),
    ...(account.tokenEndpoint ? { token: account.tokenEndpoint } : {}),
    ...(account.deviceEndpoint ? { device: account.deviceEndpoint } : {}),
    ...(account.revocationEndpoint ? { revocation: account.revocationEndpoint } : {}),
  };
  const ca = account.ca ? await readCaFile(account.ca, 'ca') : undefined;
  return {
    name: account.name,
    provider: account.provider,
    ...(account.issuer ? { issuer: account.issuer } : {}),
    ...(Object.keys(endpoints).length ? { endpoints } : {}),
    clientId: account.clientId,
    clientAuth,
    ...(account.scopes ? { scopes: account.scopes } : {}),
    ...(account.flow ? { flow: account.flow } : {}),
    http: { allowInsecureHttp: account.allowInsecureHttp, ...(ca !== undefined ? { ca } : {}) },
  };
}

/** Where an account's token comes from. */
export type TokenSourceKind = 'command' | 'file' | 'manager';

/** token_command wins over token_file; without either, popgate's own token store. */
export function tokenSourceOf(account: AccountConfig): TokenSourceKind {
  if (account.tokenCommand !== undefined) return 'command';
  if (account.tokenFile !== undefined) return 'file';
  return 'manager';
}

/**
 * The access token provider for `account`: its token_command, its token_file, or the token
 * manager (stored tokens, refreshed ahead of expiry; `forceRefresh` after an [AUTH] refusal).
 */
export async function tokenProviderFor(
  account: AccountConfig,
  ctx: Pick<CliContext, 'paths' | 'env' | 'stdin' | 'stderr'>,
): Promise<TokenProvider> {
  switch (tokenSourceOf(account)) {
    case 'command':
      return tokenCommandProvider(account.tokenCommand!, ctx.env);
    case 'file':
      return tokenFileProvider(account.tokenFile!);
    case 'manager': {
      const { manager } = await openTokens(ctx, account);
      const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
      return async ({ forceRefresh }) => (await manager.getAccessToken(resolved, { forceRefresh })).value;
    }
  }
}
