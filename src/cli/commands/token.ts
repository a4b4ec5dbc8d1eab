// `popgate token status`, `token refresh` and `token print`. Tokens are printed by `token print`
// only, and never to a terminal unless --force. The glue every OAuth command shares (store, key
// source, token manager, config account -> library options) is in ../tokens.ts.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.ts';
import { resolveAccount } from '../../oauth/account.ts';
import type { TokenStatus } from '../../oauth/token-manager.ts';
import type { RegisterCommand } from '../command.ts';
import { accountFromCli, loadConfig } from '../config.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { type KeySourceFlags, PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP } from '../token-key.ts';
import { accountOptionsFor, openTokens } from '../tokens.ts';

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
    ctx.exitCode = statusExitCode(statuses);
    return;
  }
  ctx.stdout.write(
    `token store: ${info.kind} at ${info.location ?? '(memory)'}\nkey: ${keys.source.description} (${keys.reason})\n`,
  );
  if (statuses.length === 0)
    ctx.stdout.write('no accounts: add one to the config file, then popgate login --account NAME\n');
  const now = Date.now();
  for (const status of statuses) ctx.stdout.write(`${describeStatus(status, now)}\n`);
  ctx.exitCode = statusExitCode(statuses);
}

/**
 * 77 when an account must log in (no tokens, the provider refused the refresh token, or the
 * access token expired with nothing to renew it), else 0: a script can tell without parsing.
 */
function statusExitCode(statuses: readonly TokenStatus[]): number {
  const mustLogIn = (s: TokenStatus) =>
    s.health === 'missing' || s.health === 'stale' || (s.health === 'expired' && !s.hasRefreshToken);
  return statuses.some(mustLogIn) ? EXIT.NOPERM : EXIT.OK;
}

type PrintFlags = KeySourceFlags & { account?: string; force?: boolean; refresh?: boolean };

async function printCommand(ctx: CliContext, flags: PrintFlags): Promise<void> {
  if (ctx.stdout.isTTY && !flags.force) {
    throw new ConfigError(
      'ERR_CONFIG_USAGE',
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
    .option('--account <name>', 'the account (default: the only one configured)')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: KeySourceFlags & { account?: string }) => {
      await refreshCommand(ctx, flags);
    });
  token
    .command('print')
    .description(
      "Print a fresh access token to stdout for other tools (e.g. mutt's pop_oauth_refresh_command); refuses a terminal unless --force",
    )
    .option('--account <name>', 'the account (default: the only one configured)')
    .option('--refresh', 'refresh now even if the current token is still valid')
    .option('--force', 'print even when stdout is a terminal')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: PrintFlags) => {
      await printCommand(ctx, flags);
    });
};
