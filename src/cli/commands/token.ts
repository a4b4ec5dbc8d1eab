// `popgate token status` and `popgate token print`, plus the glue every OAuth command shares:
// config account -> library options, the token store and key source, the token manager, and
// the token source `popgate fetch` uses. Tokens are printed by `token print` only, and never to a
// terminal unless --force.
import { lstat, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.ts';
import type { ClientAuthOptions, OAuthAccountOptions } from '../../oauth/account.ts';
import { resolveAccount } from '../../oauth/account.ts';
import { runNotifyCommand } from '../../oauth/notify.ts';
import { EncryptedFileTokenStore } from '../../oauth/stores/encrypted-file.ts';
import { KeyFileSource, type KeySource, PassphraseKeySource } from '../../oauth/stores/key-source.ts';
import { TokenManager, type TokenStatus } from '../../oauth/token-manager.ts';
import { type AccountConfig, loadConfig, mergeAccountSources } from '../config.ts';
import type { CliContext } from '../context.ts';
import { setOAuthTokenSource } from './fetch.ts';
import type { RegisterCommand } from './index.ts';

/** Where token files live: `$XDG_DATA_HOME/popgate/tokens`. */
export function tokenDir(ctx: Pick<CliContext, 'paths'>): string {
  return join(ctx.paths.dataDir, 'tokens');
}

/**
 * The key protecting the token files: a passphrase through scrypt when POPGATE_PASSPHRASE is
 * set, else a random key file `$XDG_DATA_HOME/popgate/token.key` (0600). An OS keyring is not
 * used: @napi-rs/keyring is not a dependency and needs a Secret Service (see docs/tokens.md).
 */
export function keySourceFor(ctx: Pick<CliContext, 'paths' | 'env'>): KeySource {
  const passphrase = ctx.env.POPGATE_PASSPHRASE;
  if (passphrase !== undefined && passphrase !== '') {
    return new PassphraseKeySource(passphrase, join(ctx.paths.dataDir, 'passphrase.salt'));
  }
  return new KeyFileSource(join(ctx.paths.dataDir, 'token.key'));
}

export function openTokenStore(ctx: Pick<CliContext, 'paths' | 'env'>): EncryptedFileTokenStore {
  return new EncryptedFileTokenStore({ dir: tokenDir(ctx), keySource: keySourceFor(ctx) });
}

/** The token manager for CLI commands, with the account's notify command wired in. */
export function openTokenManager(
  ctx: Pick<CliContext, 'paths' | 'env'>,
  account?: AccountConfig,
): TokenManager {
  const notify = account?.notifyCommand;
  return new TokenManager({
    store: openTokenStore(ctx),
    ...(notify ? { onReauthRequired: (name: string) => runNotifyCommand(notify, name) } : {}),
  });
}

function expandHome(path: string, ctx: Pick<CliContext, 'env'>): string {
  return path.startsWith('~/') ? join(ctx.env.HOME ?? homedir(), path.slice(2)) : path;
}

/** Reads a secret file (client secret), refusing one that others can read. */
async function readSecretFile(path: string, key: string): Promise<string> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch {
    throw new ConfigError('ERR_CONFIG_INVALID', `cannot read ${key} ${path}`, { key });
  }
  if (!info.isFile() || (info.mode & 0o077) !== 0) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${key} ${path} must be a regular file with mode 0600 (run chmod 600 ${path})`,
      { key },
    );
  }
  const text = (await readFile(path, 'utf8')).trim();
  if (!text) throw new ConfigError('ERR_CONFIG_INVALID', `${key} ${path} is empty`, { key });
  return text;
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
  let clientAuth: ClientAuthOptions = { method: 'none' };
  if (account.clientSecretFile !== undefined) {
    const secret = await readSecretFile(expandHome(account.clientSecretFile, ctx), 'client_secret_file');
    clientAuth = { method: 'client_secret_basic', secret };
  }
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
  const manager = openTokenManager(ctx, account);
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

async function statusCommand(ctx: CliContext, flags: { account?: string; json?: boolean }): Promise<void> {
  const manager = openTokenManager(ctx);
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
  const keySource = keySourceFor(ctx);
  const statuses: TokenStatus[] = [];
  for (const name of [...names].sort()) statuses.push(await manager.status(name));
  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        store: {
          kind: info.kind,
          location: info.location,
          keySource: info.keySource,
          key: keySource.description,
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
    `token store: ${info.kind} at ${info.location ?? '(memory)'}, key: ${keySource.description}\n`,
  );
  if (statuses.length === 0)
    ctx.stdout.write('no accounts: add one to the config file, then popgate login --account NAME\n');
  const now = Date.now();
  for (const status of statuses) ctx.stdout.write(`${describeStatus(status, now)}\n`);
}

async function printCommand(
  ctx: CliContext,
  flags: { account?: string; force?: boolean; refresh?: boolean },
): Promise<void> {
  if (ctx.stdout.isTTY && !flags.force) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'refusing to print an access token to a terminal (it would stay in the scrollback); pipe it to the program that needs it, or pass --force',
      { key: 'force' },
    );
  }
  const account = await accountFromCli(ctx, flags.account);
  const manager = openTokenManager(ctx, account);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  const token = await manager.getAccessToken(resolved, { forceRefresh: flags.refresh === true });
  ctx.stdout.write(`${token.value}\n`);
}

/** Refreshes now (rotating the refresh token where the provider does) and reports, never prints, it. */
async function refreshCommand(ctx: CliContext, flags: { account?: string }): Promise<void> {
  const account = await accountFromCli(ctx, flags.account);
  const manager = openTokenManager(ctx, account);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  await manager.getAccessToken(resolved, { forceRefresh: true });
  const status = await manager.status(resolved.name);
  ctx.stdout.write(`refreshed account ${resolved.name}\n${describeStatus(status, Date.now())}\n`);
}

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
    .action(async (flags: { account?: string; json?: boolean }) => {
      await statusCommand(ctx, flags);
    });
  token
    .command('refresh')
    .description(
      'Renew the access token now (the refresh token rotates where the provider rotates it); prints status, never the token',
    )
    .requiredOption('--account <name>', 'the account')
    .action(async (flags: { account?: string }) => {
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
    .action(async (flags: { account?: string; force?: boolean; refresh?: boolean }) => {
      await printCommand(ctx, flags);
    });
};
