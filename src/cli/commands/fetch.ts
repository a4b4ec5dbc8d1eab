// `popgate fetch`: fetch new mail of every configured account (or the named ones, or an ad-hoc
// account from flags) into Maildir, mbox or a delivery command; never loses or repeats a message
// (docs/fetch.md). Exit codes: 0 ok, 75 temporary, 77 login needed, 78 configuration, 65 data.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { ConfigError, isPopgateError } from '../../errors.ts';
import { type Destination, type RunAccountReport, runAccount } from '../../fetch/run-account.ts';
import { readCaFile } from '../../internal/ca-file.ts';
import { getPreset } from '../../oauth/providers/presets.ts';
import type { RegisterCommand } from '../command.ts';
import {
  type AccountConfig,
  expandHome,
  loadConfig,
  mergeAccountSources,
  requireAccount,
} from '../config.ts';
import type { CliContext } from '../context.ts';
import { EXIT, exitCodeFor } from '../exit-codes.ts';
import { createReporter, type FetchReporter, type ProgressMode } from '../progress.ts';
import { tokenProviderFor } from '../tokens.ts';

export interface FetchFlags {
  account?: string[];
  to?: string;
  deliver?: string;
  delete?: boolean;
  deleteAfterDays?: string;
  maxSize?: string;
  limit?: string;
  tokenCommand?: string;
  tokenFile?: string;
  host?: string;
  port?: string;
  tls?: string;
  ca?: string;
  user?: string;
  mechanism?: string;
  json?: boolean;
  quiet?: boolean;
  watch?: boolean;
  every?: string;
  wait?: string;
  parallel?: string;
}

/** `5m`, `90s`, `1h`, or plain seconds. */
export function parseInterval(text: string): number {
  const match = /^(\d{1,6})(s|m|h)?$/.exec(text.trim());
  if (!match)
    throw new ConfigError('ERR_CONFIG_INVALID', `--every "${text}" is not an interval like 90s, 5m or 1h`, {
      key: 'every',
    });
  const unit = match[2] === 'h' ? 3_600_000 : match[2] === 'm' ? 60_000 : 1000;
  const ms = Number(match[1]) * unit;
  if (ms < 10_000)
    throw new ConfigError('ERR_CONFIG_INVALID', '--every must be at least 10s', { key: 'every' });
  return ms;
}

/** `--to DIR` means a Maildir; `maildir:DIR` and `mbox:FILE` are explicit. */
function normalizeTo(to: string | undefined): string | undefined {
  if (to === undefined) return undefined;
  return /^(maildir|mbox):/.test(to) ? to : `maildir:${to}`;
}

export function destinationOf(account: AccountConfig, ctx: CliContext): Destination {
  if (account.deliverCommand !== undefined) return { kind: 'command', command: account.deliverCommand };
  const to = account.to ?? `maildir:${expandHome('~/Maildir', ctx.env)}`;
  const colon = to.indexOf(':');
  const kind = to.slice(0, colon) as 'maildir' | 'mbox';
  return { kind, path: to.slice(colon + 1) };
}

/** The accounts this run fetches, with flags and env vars merged over the config file. */
export async function resolveAccounts(flags: FetchFlags, ctx: CliContext): Promise<AccountConfig[]> {
  const config = await loadConfig(ctx);
  const overrides: Record<string, unknown> = {
    ...flags,
    to: normalizeTo(flags.to),
    deliverCommand: flags.deliver,
  };
  const names = flags.account?.length ? flags.account : [...config.accounts.keys()];
  if (names.length === 0) {
    if (flags.user === undefined && ctx.env.POPGATE_USER === undefined) {
      throw new ConfigError(
        'ERR_CONFIG_MISSING',
        `no accounts configured in ${ctx.paths.configFile}: add one with \`popgate init\`, or pass --host, --user and --token-command for an ad-hoc fetch`,
        { key: 'accounts' },
      );
    }
    return [mergeAccountSources('default', undefined, ctx.env, overrides)];
  }
  return names.map((name) => {
    const fromFile = config.accounts.has(name) || !flags.user ? requireAccount(config, name) : undefined;
    return mergeAccountSources(name, fromFile, ctx.env, overrides);
  });
}

function integer(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text))
    throw new ConfigError('ERR_CONFIG_INVALID', `--${key} must be a whole number`, { key });
  return Number(text);
}

/** Exit code of a whole run: the most actionable of the accounts' codes. */
export function combineExitCodes(codes: readonly number[]): number {
  for (const code of [EXIT.CONFIG, EXIT.NOPERM, EXIT.DATA, EXIT.TEMPFAIL, EXIT.FAILURE]) {
    if (codes.includes(code)) return code;
  }
  return EXIT.OK;
}

export interface RoundResult {
  readonly exitCode: number;
  readonly loginDelaySeconds: number;
}

async function fetchOne(
  account: AccountConfig,
  flags: FetchFlags,
  ctx: CliContext,
  reporter: FetchReporter,
  signal: AbortSignal,
): Promise<RunAccountReport> {
  const preset = getPreset(account.provider);
  const host = account.host ?? preset?.pop3.host;
  if (host === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `account ${account.name}: "host" is required for provider custom (--host)`,
      { key: 'host' },
    );
  }
  const tls = account.tls ?? preset?.pop3.tls ?? 'implicit';
  const port = account.port ?? (preset && preset.pop3.tls === tls ? preset.pop3.port : undefined);
  let ca: string | undefined;
  if (account.ca !== undefined) {
    ca = await readCaFile(account.ca, 'ca').catch((error: unknown) => {
      throw isPopgateError(error)
        ? new ConfigError('ERR_CONFIG_INVALID', `account ${account.name}: ${error.message}`, { key: 'ca' })
        : error;
    });
  }
  const mechanism = account.mechanism ?? preset?.mechanism;
  const token = await tokenProviderFor(account, ctx);
  const deleteAfterDays = account.deleteAfterDays;
  return runAccount({
    account: account.name,
    stateDir: ctx.paths.stateDir,
    host,
    tls,
    ...(port !== undefined ? { port } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(mechanism !== undefined ? { mechanism } : {}),
    user: account.user,
    token,
    destination: destinationOf(account, ctx),
    delete: account.delete,
    ...(deleteAfterDays !== undefined ? { deleteAfterDays } : {}),
    ...(account.maxSize !== undefined ? { maxSize: account.maxSize } : {}),
    ...(account.limit !== undefined ? { limit: account.limit } : {}),
    lockWaitMs: (integer(flags.wait, 'wait') ?? 0) * 1000,
    signal,
    onProgress: (p) => reporter.progress(p),
    env: ctx.env,
  });
}

async function fetchRound(
  accounts: readonly AccountConfig[],
  flags: FetchFlags,
  ctx: CliContext,
  reporter: FetchReporter,
  signal: AbortSignal,
): Promise<RoundResult> {
  const parallel = Math.max(1, integer(flags.parallel, 'parallel') ?? 4);
  const codes: number[] = [];
  let loginDelaySeconds = 0;
  const queue = [...accounts];
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (signal.aborted) return;
      try {
        const report = await fetchOne(next, flags, ctx, reporter, signal);
        reporter.done(report);
        loginDelaySeconds = Math.max(loginDelaySeconds, report.loginDelaySeconds ?? 0);
        // A failed delivery or a run stopped by a signal leaves mail for later: temporary.
        codes.push(report.failed.length > 0 || report.stopped ? EXIT.TEMPFAIL : EXIT.OK);
      } catch (error) {
        const code = exitCodeFor(error);
        if (isPopgateError(error, 'ERR_POP3_LOGIN_DELAY'))
          loginDelaySeconds = Math.max(loginDelaySeconds, 300);
        reporter.failed(next.name, error, code);
        codes.push(code);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, accounts.length) }, worker));
  return { exitCode: combineExitCodes(codes), loginDelaySeconds };
}

function progressMode(flags: FetchFlags, ctx: CliContext): ProgressMode {
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  return ctx.stderr.isTTY ? 'tty' : 'plain';
}

/** Flags that mean nothing together: refused, so a typo in a cron line does not go unnoticed. */
function checkFlagCombinations(flags: FetchFlags): void {
  if (flags.every !== undefined && !flags.watch)
    throw new ConfigError(
      'ERR_CONFIG_USAGE',
      '--every sets the interval of --watch: add --watch, or drop --every',
      {
        key: 'every',
      },
    );
  if (flags.json && flags.quiet)
    throw new ConfigError('ERR_CONFIG_USAGE', '--json and --quiet cannot be combined: choose one', {
      key: 'json',
    });
}

async function fetchCommand(flags: FetchFlags, ctx: CliContext): Promise<void> {
  checkFlagCombinations(flags);
  const accounts = await resolveAccounts(flags, ctx);
  const every = flags.watch ? parseInterval(flags.every ?? '5m') : 0;
  const reporter = createReporter(ctx, progressMode(flags, ctx));
  const controller = new AbortController();
  let signals = 0;
  let fetching = false;
  const onSignal = (name: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      reporter.note(
        fetching
          ? `popgate: ${name}: finishing the message in flight, then QUIT (send it again to stop at once)`
          : `popgate: ${name}: stopping (no fetch was running)`,
      );
      controller.abort();
    } else {
      // Stopping at once is safe too (docs/fetch.md): the next run resumes.
      reporter.close();
      process.exit(EXIT.TEMPFAIL);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    ctx.exitCode = await watchLoop({
      watch: flags.watch === true,
      everyMs: every,
      signal: controller.signal,
      round: () => {
        fetching = true;
        return fetchRound(accounts, flags, ctx, reporter, controller.signal).finally(() => {
          fetching = false;
        });
      },
      note: (text) => reporter.note(text),
      sleep: (ms, signal) => sleep(ms, undefined, { signal }),
      random: Math.random,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    reporter.close();
  }
}

/**
 * The wait before the next `--watch` round: the interval with ±10 % jitter, so many clients do not
 * hit the server at the same second, and never shorter than the LOGIN-DELAY the server announced
 * (RFC 2449 §6.8), jitter included.
 */
export function nextPollDelayMs(everyMs: number, loginDelaySeconds: number, random: () => number): number {
  const base = Math.max(everyMs, loginDelaySeconds * 1000);
  return Math.max(Math.round(base * (0.9 + random() * 0.2)), loginDelaySeconds * 1000);
}

export interface WatchLoopOptions {
  readonly watch: boolean;
  readonly everyMs: number;
  readonly signal: AbortSignal;
  readonly round: () => Promise<RoundResult>;
  readonly note: (text: string) => void;
  /** Resolves after `ms`, rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<unknown>;
  readonly random: () => number;
}

/**
 * Runs one round, or with `watch` rounds until a signal or a configuration error (which the next
 * round would only repeat); resolves with the last round's exit code.
 */
export async function watchLoop(options: WatchLoopOptions): Promise<number> {
  for (;;) {
    const result = await options.round();
    if (!options.watch || options.signal.aborted || result.exitCode === EXIT.CONFIG) return result.exitCode;
    const wait = nextPollDelayMs(options.everyMs, result.loginDelaySeconds, options.random);
    options.note(`popgate: next fetch in ${Math.round(wait / 1000)} s (Ctrl-C to stop)`);
    try {
      await options.sleep(wait, options.signal);
    } catch {
      return result.exitCode;
    }
  }
}

export const registerFetch: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('fetch')
    .description(
      'Fetch new mail of every account (or --account NAME) into Maildir, mbox or a delivery command; never loses or repeats a message',
    )
    .option('--account <name...>', 'fetch only these accounts (repeatable)')
    .option('--to <dest>', 'destination: DIR or maildir:DIR (Maildir), or mbox:FILE')
    .option(
      '--deliver <command>',
      'deliver each message to this command on stdin (procmail, dovecot-lda, sendmail -i); success only on exit 0',
    )
    .option('--delete', 'delete messages on the server once delivered and recorded')
    .option('--delete-after-days <n>', 'delete delivered messages this many days after first fetching them')
    .option('--max-size <octets>', 'skip (and report) messages larger than this')
    .option('--limit <n>', 'fetch at most this many messages per account in this run')
    .option('--token-command <command>', 'command that prints an access token')
    .option('--token-file <file>', 'file (mode 0600) holding an access token')
    .option('--host <host>', 'POP3 server host')
    .option('--port <port>', 'POP3 server port')
    .option('--tls <mode>', 'implicit or starttls')
    .option('--ca <file>', 'extra CA certificate (PEM) to trust')
    .option('--user <user>', 'mailbox login name')
    .option('--mechanism <mech>', 'XOAUTH2 or OAUTHBEARER')
    .option('--json', 'print progress and results as JSON lines (for programs)')
    .option('--quiet', 'print only errors (for cron)')
    .option('--watch', 'keep running and fetch again every --every interval')
    .option('--every <interval>', 'interval for --watch, e.g. 90s, 5m, 1h (default 5m)')
    .option('--wait <seconds>', 'wait this long for another fetch of the same account to finish')
    .option('--parallel <n>', 'accounts fetched at the same time', '4')
    .action(async (flags: FetchFlags) => {
      await fetchCommand(flags, ctx);
    });
};
