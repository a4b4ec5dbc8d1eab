// `popgate init` and `popgate accounts add`: add an account from a provider preset, asking for
// what is missing (on a terminal) or taking it from flags, and write a config that loads.
// The file is validated before it is written, and written atomically with mode 0600.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { ConfigError } from '../../errors.ts';
import { writeFileAtomic } from '../../internal/durable-fs.ts';
import { PRESETS } from '../../oauth/providers/presets.ts';
import type { RegisterCommand } from '../command.ts';
import { parseConfig } from '../config.ts';
import type { CliContext } from '../context.ts';

export interface InitFlags {
  account?: string;
  provider?: string;
  user?: string;
  clientId?: string;
  issuer?: string;
  host?: string;
  port?: string;
  to?: string;
  tokenCommand?: string;
  delete?: boolean;
}

const PROVIDERS = [...Object.keys(PRESETS), 'custom'];

type Ask = (question: string, fallback?: string) => Promise<string | undefined>;

function asker(ctx: CliContext): { ask: Ask; close: () => void } {
  if (!ctx.stdin.isTTY) {
    return { ask: async (_q, fallback) => fallback, close: () => undefined };
  }
  const rl = createInterface({ input: ctx.stdin, output: ctx.stdout });
  return {
    ask: async (question, fallback) => {
      const answer = (await rl.question(`${question}${fallback ? ` [${fallback}]` : ''}: `)).trim();
      return answer || fallback;
    },
    close: () => rl.close(),
  };
}

function need(value: string | undefined, key: string, flag: string): string {
  if (value === undefined || value === '') {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `"${key}" is needed: pass ${flag} (or run popgate init on a terminal to be asked)`,
      { key },
    );
  }
  return value;
}

async function addAccount(flags: InitFlags, ctx: CliContext): Promise<void> {
  const path = ctx.paths.configFile;
  const existing = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw new ConfigError('ERR_CONFIG_INVALID', `cannot read ${path}: ${error.message}`);
  });
  const current = existing ? parseConfig(existing, path) : undefined;
  const { ask, close } = asker(ctx);
  try {
    const name = need(
      await ask('Account name (letters, digits, . _ -)', flags.account ?? 'mail'),
      'account',
      '--account NAME',
    );
    if (current?.accounts.has(name)) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `${path} already has an account "${name}"; pick another name or edit the file`,
        { key: name },
      );
    }
    const provider = need(
      await ask(`Provider (${PROVIDERS.join(', ')})`, flags.provider ?? 'custom'),
      'provider',
      '--provider',
    );
    if (!PROVIDERS.includes(provider)) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `unknown provider "${provider}"; use one of ${PROVIDERS.join(', ')}`,
        { key: 'provider' },
      );
    }
    const table: Record<string, unknown> = { provider };
    table.user = need(await ask('Email address (the POP3 login)', flags.user), 'user', '--user');
    if (flags.tokenCommand) {
      table.token_command = flags.tokenCommand;
    } else {
      table.client_id = need(
        await ask('OAuth client id of your app registration (see docs/providers/)', flags.clientId),
        'client_id',
        '--client-id',
      );
    }
    if (provider === 'custom') {
      if (!flags.tokenCommand)
        table.issuer = need(await ask('Authorization server issuer URL', flags.issuer), 'issuer', '--issuer');
      table.host = need(await ask('POP3 server host', flags.host), 'host', '--host');
      const port = await ask('POP3 port (995: implicit TLS)', flags.port ?? '995');
      if (port) table.port = Number(port);
    } else if (flags.host) {
      table.host = flags.host;
    }
    const to = await ask('Where mail goes (maildir:DIR or mbox:FILE)', flags.to ?? 'maildir:~/Maildir');
    if (to) table.to = /^(maildir|mbox):/.test(to) ? to : `maildir:${to}`;
    if (flags.delete) table.delete = true;
    const section = stringify({ accounts: { [name]: table } });
    const text = `${existing}${existing && !existing.endsWith('\n') ? '\n' : ''}${existing ? '\n' : ''}${section}\n`;
    // Validate the whole file before writing: a config popgate cannot load is never written.
    parseConfig(text, path);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, text, 0o600);
    ctx.stdout.write(`added account "${name}" to ${path}\n`);
    ctx.stdout.write(
      flags.tokenCommand
        ? `next: popgate doctor --account ${name}, then popgate fetch --account ${name}\n`
        : `next: popgate login --account ${name}, then popgate doctor --account ${name} and popgate fetch --account ${name}\n`,
    );
  } finally {
    close();
  }
}

function withFlags(command: Command): Command {
  return command
    .option('--account <name>', 'name of the new account')
    .option('--provider <id>', `provider preset: ${PROVIDERS.join(', ')}`)
    .option('--user <email>', 'mailbox login (usually the email address)')
    .option('--client-id <id>', 'OAuth client id of your app registration')
    .option('--issuer <url>', 'issuer URL (provider custom)')
    .option('--host <host>', 'POP3 host (provider custom, or to override the preset)')
    .option('--port <port>', 'POP3 port')
    .option('--to <dest>', 'maildir:DIR or mbox:FILE')
    .option('--token-command <command>', 'use an external token helper instead of popgate login')
    .option('--delete', 'delete mail on the server once fetched');
}

export const registerInit: RegisterCommand = (program: Command, ctx: CliContext) => {
  withFlags(
    program
      .command('init')
      .description('Add a first account from a provider preset and write a valid config file'),
  ).action(async (flags: InitFlags) => addAccount(flags, ctx));
  const accounts = program.command('accounts').description('Manage configured accounts');
  withFlags(
    accounts.command('add').description('Add an account from a provider preset to the config file'),
  ).action(async (flags: InitFlags) => addAccount(flags, ctx));
};
