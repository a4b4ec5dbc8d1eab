// `popgate deliver`: a mail delivery agent for Postfix's `mailbox_command` (or procmail-style
// pipes). Reads one message from stdin and delivers it into the maildrop store; the exit status
// follows sysexits(3) so the MTA does the right thing:
//   0  delivered and durable (fsynced, numbered)
//   65 the message is unacceptable (empty, too large): the MTA bounces it
//   75 a temporary failure (disk full, I/O error, the store busy or missing, anything
//      unexpected): the MTA keeps the message and retries
//   78 the command is misconfigured (bad --store, bad --user): fix the mailbox_command
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ConfigError, isPopgateError } from '../../errors.ts';
import { MaildirStore } from '../../store/maildir-store.ts';
import { parseStoreSpec } from '../../store/spec.ts';
import type { RegisterCommand } from '../command.ts';
import type { CliContext } from '../context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';

interface DeliverFlags {
  user?: string;
  keepCase?: boolean;
  store?: string;
  maxSize?: string;
}

/** The exit status `popgate deliver` gives for an error (see the file comment). */
export function deliverExitCode(error: unknown): ExitCode {
  if (!isPopgateError(error)) return EXIT.TEMPFAIL;
  if (error.code === 'ERR_STORE_INVALID_MESSAGE') return EXIT.DATA;
  if (error.code === 'ERR_STORE_INVALID_USER' || error.code.startsWith('ERR_CONFIG_')) return EXIT.CONFIG;
  return EXIT.TEMPFAIL;
}

async function deliver(flags: DeliverFlags, ctx: CliContext): Promise<void> {
  const user = flags.user;
  if (user === undefined || user === '') {
    throw new ConfigError('ERR_CONFIG_MISSING', 'deliver needs --user NAME', { key: 'user' });
  }
  const specText = flags.store ?? ctx.env.POPGATE_STORE;
  if (specText === undefined || specText === '') {
    throw new ConfigError('ERR_CONFIG_MISSING', 'deliver needs --store maildir:DIR (or POPGATE_STORE)', {
      key: 'store',
    });
  }
  let maxMessageSize: number | undefined;
  if (flags.maxSize !== undefined) {
    maxMessageSize = Number(flags.maxSize);
    if (!/^\d{1,15}$/.test(flags.maxSize) || maxMessageSize <= 0) {
      throw new ConfigError('ERR_CONFIG_INVALID', '--max-size must be a positive number of octets', {
        key: 'maxSize',
      });
    }
  }
  const spec = parseStoreSpec(specText);
  const store = new MaildirStore(spec.root, maxMessageSize === undefined ? {} : { maxMessageSize });
  try {
    const input = ctx.stdin instanceof Readable ? ctx.stdin : Readable.from(ctx.stdin);
    // Addresses are case-insensitive (Postfix's local(8) folds too, dovecot-lda's default
    // auth_username_format is %Lu): lower case, as the server names email logins. A maildrop named
    // by a case-sensitive `sub` keeps its case with --keep-case.
    await store.deliver(flags.keepCase ? user : user.toLowerCase(), input);
  } finally {
    await store.close();
  }
}

export const registerDeliver: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('deliver')
    .description(
      'Deliver one message from stdin into a maildrop (an MDA for Postfix mailbox_command). ' +
        'Exits 0 only once the message is durable; 75 on a temporary failure, 65 for an ' +
        'unacceptable message, 78 for a configuration error.',
    )
    .option(
      '--user <name>',
      'the maildrop owner, as the server names users (e.g. an e-mail address); lower-cased',
    )
    .option('--keep-case', 'keep the case of --user (maildrops named by a case-sensitive sub claim)')
    .option('--store <spec>', 'the maildrop store: maildir:/absolute/dir (env POPGATE_STORE)')
    .option('--max-size <octets>', 'refuse messages larger than this (default 104857600)')
    .action(async (flags: DeliverFlags) => {
      await deliver(flags, ctx);
      ctx.exitCode = EXIT.OK;
    });
};
