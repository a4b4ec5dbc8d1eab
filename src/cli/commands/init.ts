// `popgate init` and `popgate accounts add`: add an account from a provider preset, asking for
// what is missing (on a terminal) or taking it from flags, and write a config that loads.
// Each answer is checked when it is given, by the loader's own rules (src/cli/answer-checks.ts),
// and asked again with what was wrong; a flag with a bad value is asked again on a terminal and
// fails with exit 78 elsewhere. The file is validated whole before it is written, atomically,
// mode 0600. On a terminal, once written, init offers to run `popgate login` and `popgate doctor`.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { ConfigError } from '../../errors.ts';
import { writeFileAtomic } from '../../internal/durable-fs.ts';
import { PRESETS } from '../../oauth/providers/presets.ts';
import { checkAccountName, checkCa, checkIssuer, checkSetting } from '../answer-checks.ts';
import type { RegisterCommand } from '../command.ts';
import { parseConfig } from '../config.ts';
import type { CliContext } from '../context.ts';
import { type Question, questioner } from '../questioner.ts';

export interface InitFlags {
  account?: string;
  provider?: string;
  user?: string;
  clientId?: string;
  issuer?: string;
  allowInsecureHttp?: boolean;
  flow?: string;
  scopes?: string;
  host?: string;
  tls?: string;
  port?: string;
  ca?: string;
  to?: string;
  tokenCommand?: string;
  delete?: boolean;
}

const PROVIDERS = [...Object.keys(PRESETS), 'custom'];

async function addAccount(flags: InitFlags, ctx: CliContext): Promise<void> {
  const path = ctx.paths.configFile;
  const existing = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw new ConfigError('ERR_CONFIG_INVALID', `cannot read ${path}: ${error.message}`);
  });
  const current = existing ? parseConfig(existing, path) : undefined;
  const q = questioner(ctx);
  let name: string;
  let table: Record<string, unknown>;
  try {
    name = (await q.value({
      key: 'account',
      flag: '--account NAME',
      prompt: 'Account name (letters, digits, . _ -)',
      given: flags.account,
      fallback: 'mail',
      check: (answer) => {
        checkAccountName(answer);
        if (current?.accounts.has(answer)) {
          throw new ConfigError(
            'ERR_CONFIG_INVALID',
            `${path} already has an account "${answer}"; pick another name or edit the file`,
            { key: answer },
          );
        }
        return answer;
      },
    })) as string;
    const setting = (key: string, flag: string, prompt: string, given: string | undefined) =>
      ({ key, flag, prompt, given, check: (answer: string) => checkSetting(key, answer) }) satisfies Question;
    const provider = (await q.value({
      ...setting('provider', '--provider', `Provider (${PROVIDERS.join(', ')})`, flags.provider),
      fallback: 'custom',
    })) as string;
    table = { provider };
    table.user = await q.value(setting('user', '--user', 'Email address (the POP3 login)', flags.user));
    const oauth = !flags.tokenCommand;
    if (flags.tokenCommand) table.token_command = checkSetting('token_command', flags.tokenCommand);
    else {
      table.client_id = await q.value(
        setting(
          'client_id',
          '--client-id',
          'OAuth client id of your app registration (see docs/providers/)',
          flags.clientId,
        ),
      );
    }
    if (flags.allowInsecureHttp) table.allow_insecure_http = true;
    const custom = provider === 'custom';
    // A custom account is asked for what a preset would bring; a preset takes these as flags only.
    const optional = async (question: Question): Promise<void> => {
      const value = custom ? await q.value(question) : await q.flagOnly(question);
      if (value !== undefined) table[question.key] = value;
    };
    if (custom && oauth) {
      table.issuer = await q.value({
        key: 'issuer',
        flag: '--issuer URL',
        prompt: 'Authorization server issuer URL (https://...)',
        given: flags.issuer,
        check: async (answer) => {
          if (checkIssuer(answer, table.allow_insecure_http === true) === 'loopback-http') {
            const why = `the issuer ${new URL(answer).origin} is plain http`;
            if (!q.interactive) {
              throw new ConfigError(
                'ERR_CONFIG_INVALID',
                `${why}: allowed only on loopback with --allow-insecure-http (tests and local development)`,
                { key: 'issuer' },
              );
            }
            if (
              !(await q.confirm(
                `${why}. Allow plain http to this loopback issuer (tests and local development only)?`,
              ))
            )
              throw new ConfigError('ERR_CONFIG_INVALID', 'give an https issuer', { key: 'issuer' });
            table.allow_insecure_http = true;
          }
          return answer;
        },
      });
    }
    if (oauth) {
      await optional({
        ...setting(
          'flow',
          '--flow',
          'Login flow (device, browser, client-credentials; blank: device when the server offers it)',
          flags.flow,
        ),
        optional: true,
      });
      await optional({
        ...setting(
          'scopes',
          '--scopes',
          "Scopes to request, space separated (your provider's POP3 scope; blank: none)",
          flags.scopes,
        ),
        optional: true,
      });
    }
    if (custom) table.host = await q.value(setting('host', '--host', 'POP3 server host', flags.host));
    else await optional(setting('host', '--host', 'POP3 server host', flags.host));
    await optional({
      ...setting('tls', '--tls', 'POP3 TLS (implicit, starttls)', flags.tls),
      fallback: 'implicit',
    });
    await optional({
      ...setting('port', '--port', 'POP3 port', flags.port),
      fallback: table.tls === 'starttls' ? '110' : '995',
    });
    await optional({
      key: 'ca',
      flag: '--ca FILE',
      prompt: 'Extra CA certificate file (PEM) for a private CA (blank: none)',
      given: flags.ca,
      optional: true,
      check: (answer) => checkCa(answer, ctx.env),
    });
    table.to = await q.value({
      key: 'to',
      flag: '--to',
      prompt: 'Where mail goes (maildir:DIR or mbox:FILE)',
      given: flags.to,
      fallback: 'maildir:~/Maildir',
      check: (answer) => checkSetting('to', /^(maildir|mbox):/.test(answer) ? answer : `maildir:${answer}`),
    });
    if (flags.delete) table.delete = true;
  } finally {
    q.close();
  }
  const section = stringify({ accounts: { [name]: table } });
  const text = `${existing}${existing && !existing.endsWith('\n') ? '\n' : ''}${existing ? '\n' : ''}${section}\n`;
  // Validate the whole file before writing: a config popgate cannot load is never written.
  const written = parseConfig(text, path);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, text, 0o600);
  ctx.stdout.write(`added account "${name}" to ${path}\n`);
  await nextSteps(
    ctx,
    q.asked > 0,
    table.token_command === undefined,
    written.accounts.size === 1 ? [] : ['--account', name],
  );
}

/**
 * After an interactive run, offers `popgate login` then `popgate doctor` (y/N each), run in this
 * process through main(); prints the steps left. A run that asked nothing (every answer a flag,
 * or no terminal) never prompts. With one account configured the commands need no --account.
 */
async function nextSteps(ctx: CliContext, offer: boolean, oauth: boolean, select: string[]): Promise<void> {
  const command = (verb: string): string => ['popgate', verb, ...select].join(' ');
  const left = [...(oauth ? ['login'] : []), 'doctor', 'fetch'];
  const run = async (verb: string): Promise<boolean> => {
    if (!offer || !ctx.run) return false;
    const q = questioner(ctx);
    const yes = await q
      .confirm(`${verb === 'login' ? 'Log in now' : 'Run popgate doctor now'} (${command(verb)})?`)
      .finally(() => q.close());
    if (!yes) return false;
    const code = await ctx.run([verb, ...select]);
    // A step that failed stays in the hints, and init ends with its code; the account stays written.
    if (code !== 0) ctx.exitCode = code;
    else left.shift();
    return code === 0;
  };
  if (!oauth || (await run('login'))) await run('doctor');
  const [first, ...rest] = left.map(command);
  ctx.stdout.write(`next: ${first}${rest.length ? `, then ${rest.join(' and ')}` : ''}\n`);
}

function withFlags(command: Command): Command {
  return command
    .option('--account <name>', 'name of the new account')
    .option('--provider <id>', `provider preset: ${PROVIDERS.join(', ')}`)
    .option('--user <email>', 'mailbox login (usually the email address)')
    .option('--client-id <id>', 'OAuth client id of your app registration')
    .option(
      '--issuer <url>',
      'issuer URL (provider custom; https, or http on loopback with --allow-insecure-http)',
    )
    .option('--allow-insecure-http', 'allow an http:// issuer on loopback (tests and local development)')
    .option('--flow <flow>', 'device, browser or client-credentials')
    .option('--scopes <scopes>', 'scopes to request, space or comma separated')
    .option('--host <host>', 'POP3 host (provider custom, or to override the preset)')
    .option('--tls <mode>', 'implicit (default) or starttls')
    .option('--port <port>', 'POP3 port (default 995, or 110 with --tls starttls)')
    .option('--ca <file>', 'extra CA certificate (PEM) for a private CA')
    .option('--to <dest>', 'maildir:DIR or mbox:FILE')
    .option('--token-command <command>', 'use an external token helper instead of popgate login')
    .option('--delete', 'delete mail on the server once fetched');
}

export const registerInit: RegisterCommand = (program: Command, ctx: CliContext) => {
  withFlags(
    program
      .command('init')
      .description(
        'Add a first account from a provider preset and write a valid config file (on a terminal: asks for what the flags leave out, checks each answer, then offers login and doctor)',
      ),
  ).action(async (flags: InitFlags) => addAccount(flags, ctx));
  const accounts = program.command('accounts').description('Manage configured accounts');
  withFlags(
    accounts.command('add').description('Add an account from a provider preset to the config file'),
  ).action(async (flags: InitFlags) => addAccount(flags, ctx));
};
