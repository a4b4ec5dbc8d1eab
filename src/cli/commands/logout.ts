// `popgate logout --account NAME`: revokes the refresh token at the provider (RFC 7009) and
// deletes the local tokens; when the provider has no revocation endpoint, says how to withdraw
// consent instead.
import type { Command } from 'commander';
import { resolveAccount } from '../../oauth/account.ts';
import type { CliContext } from '../context.ts';
import type { RegisterCommand } from './index.ts';
import { accountFromCli, accountOptionsFor, openTokenManager } from './token.ts';

async function logout(ctx: CliContext, flags: { account?: string; revoke?: boolean }): Promise<void> {
  const config = await accountFromCli(ctx, flags.account);
  const account = await resolveAccount(await accountOptionsFor(config, ctx));
  const manager = openTokenManager(ctx, config);
  const result = await manager.logout(account, { revoke: flags.revoke !== false });
  if (!result.deleted) {
    ctx.stderr.write(`No tokens were stored for account ${account.name}.\n`);
    return;
  }
  if (result.revoked) {
    ctx.stderr.write(
      `Revoked the refresh token at the provider and deleted the local tokens of account ${account.name}.\n`,
    );
  } else {
    ctx.stderr.write(`Deleted the local tokens of account ${account.name}.\n`);
    if (result.instructions) ctx.stderr.write(`${result.instructions}\n`);
    else if (flags.revoke === false)
      ctx.stderr.write('The grant was not revoked at the provider (--no-revoke).\n');
  }
}

export const registerLogout: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('logout')
    .description('Revoke the refresh token at the provider (RFC 7009), then delete the local tokens')
    .requiredOption('--account <name>', 'the account')
    .option('--no-revoke', 'only delete locally (e.g. when the provider cannot be reached)')
    .action(async (flags: { account?: string; revoke?: boolean }) => {
      await logout(ctx, flags);
    });
};
