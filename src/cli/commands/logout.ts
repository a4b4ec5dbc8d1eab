// `popgate logout --account NAME`: revokes the refresh token at the provider (RFC 7009) and
// deletes the local tokens; when the provider has no revocation endpoint, says how to withdraw
// consent instead.
import type { Command } from 'commander';
import { resolveAccount } from '../../oauth/account.ts';
import type { RegisterCommand } from '../command.ts';
import { accountFromCli } from '../config.ts';
import type { CliContext } from '../context.ts';
import { PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP } from '../token-key.ts';
import { accountOptionsFor, openTokens } from '../tokens.ts';

type LogoutFlags = { account?: string; revoke?: boolean; passphrasePrompt?: boolean };

async function logout(ctx: CliContext, flags: LogoutFlags): Promise<void> {
  const config = await accountFromCli(ctx, flags.account);
  const account = await resolveAccount(await accountOptionsFor(config, ctx));
  const { manager } = await openTokens(ctx, config, flags);
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
    .option('--account <name>', 'the account (default: the only one configured)')
    .option('--no-revoke', 'only delete locally (e.g. when the provider cannot be reached)')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: LogoutFlags) => {
      await logout(ctx, flags);
    });
};
