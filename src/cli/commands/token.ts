// `popgate token status` and `popgate token print`, plus the glue every OAuth command shares:
// config account -> library options, the token store and key source, the token manager, and
// the token source `popgate fetch` uses. Tokens are printed by `token print` only, and never to a
// terminal unless --force.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.ts';
import type { OAuthAccountOptions } from '../../oauth/account.ts';
import { resolveAccount } from '../../oauth/account.ts';
import { runNotifyCommand } from '../../oauth/notify.ts';
import { EncryptedFileTokenStore } from '../../oauth/stores/encrypted-file.ts';
import type { KeySourceSelection } from '../../oauth/stores/select-key-source.ts';
import { TokenManager, type TokenStatus } from '../../oauth/token-manager.ts';
import { clientAuthFor, expandHome } from '../client-auth.ts';
import { type AccountConfig, loadConfig, mergeAccountSources } from '../config.ts';
import type { CliContext } from '../context.ts';
import { type KeySourceFlags, selectCliKeySource } from '../token-key.ts';
import { setOAuthTokenSource } from './fetch.ts';
import type { RegisterCommand } from './index.ts';

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
  const ca = account.ca
    ? await readFile(expandHome(account.ca, ctx), 'utf8').catch(() => {
        throw new ConfigError('ERR_CONFIG_INVALID', `cannot read the CA file ${account.ca}`, { key: 'ca' });
      })
    : undefined;
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

/** The config account `name` with env vars and flags applied (flags win). */
export async function accountFromCli(
  ctx: CliContext,
  name: string | undefined,
  flags: Readonly<Record<string, unknown>> = {},
): Promise<AccountConfig> {
  if (!name)
    throw new ConfigError('ERR_CONFIG_MISSING', 'name the account with --account NAME', { key: 'account' });
  const config = await loadConfig(ctx);
  const fromFile = config.accounts.get(name);
  if (!fromFile && Object.keys(flags).length === 0) {
    const names = [...config.accounts.keys()];
    throw new ConfigError(
      'ERR_CONFIG_ACCOUNT_UNKNOWN',
      `no account "${name}" in ${config.path ?? ctx.paths.configFile}${names.length ? `; configured: ${names.join(', ')}` : ''}`,
      { key: name },
    );
  }
  return mergeAccountSources(name, fromFile, ctx.env, flags);
}

// `popgate fetch` asks the token manager when an account has neither token_command nor token_file.
setOAuthTokenSource(async (account, ctx) => {
  const { manager } = await openTokens(ctx, account);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  return async ({ forceRefresh }) => (await manager.getAccessToken(resolved, { forceRefresh })).value;
});

function describeStatus(status: TokenStatus, now: number): string {
  const lines = [`account ${status.account}: ${status.health}`];
  if (status.health === 'missing') {
    lines.push(`  no tokens stored: run popgate login --account ${status.account}`);
    return lines.join('\n');
  }
  if (status.expiresAt !== undefined) {
    const minutes = Math.round((status.expiresAt - now) / 60_000);
    lines.push(
      `  access token expires ${new Date(status.expiresAt).toISOString()} (${minutes >= 0 ? `in ${minutes} min` : `${-minutes} min ago`})`,
    );
  }
  lines.push(`  scopes: ${status.scopes.join(' ') || '(none reported)'}`);
  lines.push(
    `  refresh token: ${status.hasRefreshToken ? 'yes' : 'no'}${status.flow ? `; obtained with the ${status.flow} flow` : ''}`,
  );
  if (status.health === 'stale') {
    lines.push(
      `  the provider refused the refresh token (${status.staleReason ?? 'invalid_grant'}): run popgate login --account ${status.account}`,
    );
  }
  return lines.join('\n');
}

type StatusFlags = KeySourceFlags & { account?: string; json?: boolean };

async function statusCommand(ctx: CliContext, flags: StatusFlags): Promise<void> {
  const { manager, keys } = await openTokens(ctx, undefined, flags);
  const store = manager.store;
  const names = new Set<string>();
  if (flags.account) {
    names.add(flags.account);
  } else {
    const config = await loadConfig(ctx);
    for (const name of config.accounts.keys()) names.add(name);
    for (const name of await store.list()) names.add(name);
  }
  const info = store.info();
  const statuses: TokenStatus[] = [];
  for (const name of [...names].sort()) statuses.push(await manager.status(name));
  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        store: {
          kind: info.kind,
          location: info.location,
          keySource: info.keySource,
          key: keys.source.description,
          keySelection: { source: keys.kind, reason: keys.reason, note: keys.note ?? null },
        },
        accounts: statuses.map((s) => ({
          account: s.account,
          health: s.health,
          expiresAt: s.expiresAt === undefined ? null : new Date(s.expiresAt).toISOString(),
          scopes: s.scopes,
          hasRefreshToken: s.hasRefreshToken,
          flow: s.flow ?? null,
          staleReason: s.staleReason ?? null,
        })),
      })}\n`,
    );
    return;
  }
  ctx.stdout.write(
    `token store: ${info.kind} at ${info.location ?? '(memory)'}\nkey: ${keys.source.description} (${keys.reason})\n`,
  );
  if (statuses.length === 0)
    ctx.stdout.write('no accounts: add one to the config file, then popgate login --account NAME\n');
  const now = Date.now();
  for (const status of statuses) ctx.stdout.write(`${describeStatus(status, now)}\n`);
}

type PrintFlags = KeySourceFlags & { account?: string; force?: boolean; refresh?: boolean };

async function printCommand(ctx: CliContext, flags: PrintFlags): Promise<void> {
  if (ctx.stdout.isTTY && !flags.force) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'refusing to print an access token to a terminal (it would stay in the scrollback); pipe it to the program that needs it, or pass --force',
      { key: 'force' },
    );
  }
  const account = await accountFromCli(ctx, flags.account);
  const { manager } = await openTokens(ctx, account, flags);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  const token = await manager.getAccessToken(resolved, { forceRefresh: flags.refresh === true });
  ctx.stdout.write(`${token.value}\n`);
}

/** Refreshes now (rotating the refresh token where the provider does) and reports, never prints, it. */
async function refreshCommand(ctx: CliContext, flags: KeySourceFlags & { account?: string }): Promise<void> {
  const account = await accountFromCli(ctx, flags.account);
  const { manager } = await openTokens(ctx, account, flags);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  await manager.getAccessToken(resolved, { forceRefresh: true });
  const status = await manager.status(resolved.name);
  ctx.stdout.write(`refreshed account ${resolved.name}\n${describeStatus(status, Date.now())}\n`);
}

/** `--passphrase-prompt`, shared by every command that opens the token store. */
export const PASSPHRASE_PROMPT_FLAG = '--passphrase-prompt';
export const PASSPHRASE_PROMPT_HELP =
  'protect the tokens with a passphrase asked for on the terminal without echo (instead of POPGATE_PASSPHRASE, the keyring or the key file)';

export const registerToken: RegisterCommand = (program: Command, ctx: CliContext) => {
  const token = program
    .command('token')
    .description(
      'Inspect stored OAuth tokens (status), renew them now (refresh), or hand one to another program (print)',
    );
  token
    .command('status')
    .description(
      'Show expiry, granted scopes, store and key in use, and health of each account — never the token',
    )
    .option('--account <name>', 'only this account')
    .option('--json', 'print JSON')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: StatusFlags) => {
      await statusCommand(ctx, flags);
    });
  token
    .command('refresh')
    .description(
      'Renew the access token now (the refresh token rotates where the provider rotates it); prints status, never the token',
    )
    .requiredOption('--account <name>', 'the account')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: KeySourceFlags & { account?: string }) => {
      await refreshCommand(ctx, flags);
    });
  token
    .command('print')
    .description(
      "Print a fresh access token to stdout for other tools (e.g. mutt's pop_oauth_refresh_command); refuses a terminal unless --force",
    )
    .requiredOption('--account <name>', 'the account')
    .option('--refresh', 'refresh now even if the current token is still valid')
    .option('--force', 'print even when stdout is a terminal')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: PrintFlags) => {
      await printCommand(ctx, flags);
    });
};
