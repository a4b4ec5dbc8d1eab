// `popgate proxy`: a local POP3 proxy for clients that only know passwords (docs/proxy.md), and
// `popgate proxy passwords add|list|revoke`, the app passwords those clients log in with. Reads
// the `[proxy]` table and the `[accounts.NAME]` tables of the config file (or --config FILE), or
// one ad-hoc account from flags; wires pino, prom-client and the token manager; reloads TLS on
// SIGHUP and shuts down gracefully on SIGTERM/SIGINT. Over 400 lines (architecture.md R1): the
// two commands share the config and account resolution; splitting the password subcommands out
// is the next step when either grows.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import type { TokenProvider } from '../../client/login.ts';
import { ConfigError, isPopgateError } from '../../errors.ts';
import { getPreset } from '../../oauth/providers/presets.ts';
import type { Logger } from '../../observability/logger.ts';
import { type MetricsListener, startMetricsListener } from '../../observability/metrics.ts';
import { AppPasswordStore } from '../../proxy/app-passwords.ts';
import { createProxyAuditSink } from '../../proxy/audit.ts';
import { createProxyMetrics } from '../../proxy/metrics.ts';
import type { LocalPasswordCheck, ProxyAccount } from '../../proxy/options.ts';
import { createPop3Proxy } from '../../proxy/proxy.ts';
import { ensureSelfSigned } from '../../proxy/self-signed.ts';
import { parseListenUrl } from '../../server/options.ts';
import { readSecretFile } from '../client-auth.ts';
import type { RegisterCommand } from '../command.ts';
import {
  type AccountConfig,
  loadConfig,
  mergeAccountSources,
  requireAccount,
  validateProxyTable,
} from '../config.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { tokenProviderFor } from '../tokens.ts';

interface ProxyFlags {
  config?: string;
  listen?: string[];
  account?: string[];
  localPasswordFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  metrics?: string;
  logLevel?: string;
  host?: string;
  port?: string;
  tls?: string;
  ca?: string;
  user?: string;
  localUser?: string;
  mechanism?: string;
  tokenFile?: string;
  tokenCommand?: string;
}

/** The CLI context with `--config FILE` as the config file. */
function withConfig(ctx: CliContext, config: string | undefined): CliContext {
  if (config === undefined) return ctx;
  return Object.assign(Object.create(ctx) as CliContext, { paths: { ...ctx.paths, configFile: config } });
}

/** Where the app passwords live: apart from the token store and its key. */
export function appPasswordFile(ctx: Pick<CliContext, 'paths'>): string {
  return join(ctx.paths.dataDir, 'proxy', 'app-passwords.json');
}

/** A token provider that is built on first use when the identity provider cannot be reached now. */
function lazyProvider(account: AccountConfig, ctx: CliContext): TokenProvider {
  let provider: Promise<TokenProvider> | undefined;
  return async (options) => {
    provider ??= tokenProviderFor(account, ctx).catch((error: unknown) => {
      provider = undefined;
      throw error;
    });
    return (await provider)(options);
  };
}

async function proxyAccount(account: AccountConfig, ctx: CliContext, log: Logger): Promise<ProxyAccount> {
  const preset = getPreset(account.provider);
  const host = account.host ?? preset?.pop3.host;
  if (host === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `account ${account.name}: "host" is required for provider custom`,
      {
        key: 'host',
      },
    );
  }
  const tls = account.tls ?? preset?.pop3.tls ?? 'implicit';
  const port = account.port ?? (preset && preset.pop3.tls === tls ? preset.pop3.port : undefined);
  let ca: string | undefined;
  if (account.ca !== undefined) {
    const caPath = account.ca;
    ca = await readFile(caPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `account ${account.name}: cannot read the CA file ${caPath} (${error.code})`,
        {
          key: 'ca',
        },
      );
    });
  }
  const mechanism = account.mechanism ?? preset?.mechanism;
  let token: TokenProvider;
  try {
    token = await tokenProviderFor(account, ctx);
  } catch (error) {
    // A configuration mistake stops the start; an unreachable identity provider does not.
    if (error instanceof ConfigError || !isPopgateError(error) || error.code.startsWith('ERR_TOKEN_STORE'))
      throw error;
    log.warn(
      { account: account.name, code: error.code },
      'identity provider not reachable yet; will retry at login',
    );
    token = lazyProvider(account, ctx);
  }
  return {
    name: account.name,
    localUser: account.localUser ?? account.user,
    token,
    upstream: {
      host,
      ...(port !== undefined ? { port } : {}),
      tls,
      ...(ca !== undefined ? { ca } : {}),
      ...(mechanism !== undefined ? { mechanism } : {}),
      user: account.user,
      // Exchange Online documents POP3 XOAUTH2 two-step only.
      ...(account.provider === 'microsoft' ? { twoStep: true } : {}),
    },
  };
}

/** The accounts to serve: `--account` names (with flags merged), else `[proxy] accounts`, else all. */
async function accountsToServe(
  flags: ProxyFlags,
  ctx: CliContext,
  table: Readonly<Record<string, unknown>>,
): Promise<AccountConfig[]> {
  const config = await loadConfig(ctx);
  const accountFlags: Record<string, unknown> = {};
  for (const key of [
    'host',
    'port',
    'tls',
    'ca',
    'user',
    'localUser',
    'mechanism',
    'tokenFile',
    'tokenCommand',
  ] as const) {
    if (flags[key] !== undefined) accountFlags[key] = flags[key];
  }
  if (flags.account?.length) {
    return flags.account.map((name) => {
      const fromFile = config.accounts.get(name);
      if (!fromFile && accountFlags.user === undefined) requireAccount(config, name);
      return mergeAccountSources(name, fromFile, ctx.env, accountFlags);
    });
  }
  const names = (table.accounts as string[] | undefined) ?? [...config.accounts.keys()];
  if (names.length === 0) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `no accounts in ${ctx.paths.configFile}: add [accounts.NAME] (popgate init) or pass --account NAME`,
      { key: 'accounts' },
    );
  }
  return names.map((name) => requireAccount(config, name));
}

/** The local password check: app passwords, and for --local-password-file accounts that file. */
async function passwordCheck(
  flags: ProxyFlags,
  store: AppPasswordStore,
  accounts: readonly AccountConfig[],
): Promise<LocalPasswordCheck> {
  if (flags.localPasswordFile === undefined) return (account, password) => store.verify(account, password);
  const secret = await readSecretFile(flags.localPasswordFile, 'local_password_file');
  const digest = createHash('sha256').update(secret).digest();
  const names = new Set(accounts.map((a) => a.name));
  return async (account, password) => {
    if (!names.has(account)) return store.verify(account, password);
    const given = createHash('sha256').update(password).digest();
    return timingSafeEqual(given, digest) ? { id: 'file', label: 'local-password-file' } : undefined;
  };
}

function parseMetrics(spec: unknown): { host: string; port: number } {
  const match = typeof spec === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(spec) : null;
  if (!match) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'proxy.metrics must be HOST:PORT, e.g. 127.0.0.1:9111', {
      key: 'proxy.metrics',
    });
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

async function runProxy(flags: ProxyFlags, ctx: CliContext): Promise<void> {
  const config = await loadConfig(ctx);
  const table = config.proxy ?? validateProxyTable({});
  const logLevel = flags.logLevel ?? (table.log_level as string);
  const log = pino({ level: logLevel, base: { service: 'popgate-proxy' } }, ctx.stderr);
  const logger = log as unknown as Logger;
  const listen = flags.listen?.length ? flags.listen : (table.listen as string[]);
  const accounts = await accountsToServe(flags, ctx, table);
  const certFile = flags.tlsCert ?? (table.tls_cert as string | undefined);
  const keyFile = flags.tlsKey ?? (table.tls_key as string | undefined);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'tls_cert and tls_key go together', {
      key: 'proxy.tls_cert',
    });
  }
  let tls: { certFile: string; keyFile: string } | undefined;
  if (certFile !== undefined) tls = { certFile, keyFile: keyFile! };
  else if (table.self_signed === true) {
    const names = new Set(['localhost', '127.0.0.1', '::1', hostname()]);
    for (const url of listen) {
      try {
        const { host } = parseListenUrl(url);
        if (host !== '0.0.0.0' && host !== '::') names.add(host);
      } catch {
        // resolveProxyOptions names the bad URL
      }
    }
    const pair = await ensureSelfSigned(join(ctx.paths.dataDir, 'proxy', 'tls'), [...names]);
    tls = { certFile: pair.certFile, keyFile: pair.keyFile };
    ctx.stdout.write(
      `tls self-signed certificate ${pair.certFile} sha256 ${pair.fingerprint}${pair.created ? ' (new: import it in your mail clients)' : ''}\n`,
    );
  }
  const store = new AppPasswordStore({ file: appPasswordFile(ctx) });
  const metrics = createProxyMetrics();
  const served = await Promise.all(accounts.map((a) => proxyAccount(a, ctx, logger)));
  const proxy = createPop3Proxy({
    listen,
    ...(tls !== undefined ? { tls } : {}),
    plaintextLoopback: table.plaintext_loopback !== false,
    accounts: served,
    checkPassword: await passwordCheck(flags, store, flags.localPasswordFile ? accounts : []),
    limits: {
      maxConnections: table.max_connections as number,
      maxConnectionsPerIp: table.max_connections_per_ip as number,
      maxConnectionsPerAccount: table.max_connections_per_account as number,
      maxFailedLoginsPerSession: table.max_failed_logins as number,
      failedLoginDelayMs: table.failed_login_delay_ms as number,
      idleTimeoutMs: (table.idle_timeout_seconds as number) * 1000,
    },
    logger: logger.child?.({ part: 'proxy' }) ?? logger,
    audit: createProxyAuditSink(logger.child?.({ part: 'audit' }) ?? logger),
    metrics,
  });
  const addresses = await proxy.listen();
  let closing = false;
  let metricsListener: MetricsListener | undefined;
  const metricsSpec = flags.metrics ?? table.metrics;
  if (metricsSpec !== undefined) {
    metricsListener = await startMetricsListener(metrics, {
      ...parseMetrics(metricsSpec),
      healthy: () => !closing,
    });
    ctx.stdout.write(
      `metrics http://${parseMetrics(metricsSpec).host}:${metricsListener.address.port}/metrics\n`,
    );
  }
  for (const a of served)
    ctx.stdout.write(`account ${a.name} login ${a.localUser} upstream ${a.upstream.host}\n`);
  for (const a of addresses) ctx.stdout.write(`listening ${a.url}\n`);
  const grace = (table.shutdown_grace_seconds as number) * 1000;
  await new Promise<void>((resolve) => {
    const onHup = () => {
      // Without local TLS there is nothing to reload; SIGHUP must still not end the process.
      if (tls === undefined) return logger.info({}, 'SIGHUP: no local TLS to reload');
      proxy
        .reloadTls()
        .catch((error) =>
          logger.error({ code: isPopgateError(error) ? error.code : undefined }, 'TLS reload failed'),
        );
    };
    const onStop = () => {
      if (closing) return;
      closing = true;
      process.off('SIGHUP', onHup);
      logger.info({}, 'shutting down');
      proxy
        .close({ graceMs: grace })
        .then(() => metricsListener?.close())
        .finally(() => {
          process.off('SIGTERM', onStop);
          process.off('SIGINT', onStop);
          resolve();
        });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}

// --- popgate proxy passwords ----------------------------------------------------------------

interface PasswordFlags {
  config?: string;
  account?: string | string[];
  label?: string;
  json?: boolean;
}

function oneAccount(flags: PasswordFlags): string {
  const name = Array.isArray(flags.account) ? flags.account.at(-1) : flags.account;
  if (name === undefined) {
    throw new ConfigError('ERR_CONFIG_MISSING', 'name the account with --account NAME', { key: 'account' });
  }
  return name;
}

async function addPassword(flags: PasswordFlags, ctx: CliContext): Promise<void> {
  const config = await loadConfig(ctx);
  const account = requireAccount(config, oneAccount(flags));
  const created = await new AppPasswordStore({ file: appPasswordFile(ctx) }).add(account.name, flags.label);
  ctx.stdout.write(
    `app password for account ${account.name} (label ${created.label}, id ${created.id}):\n\n    ${created.password}\n\n` +
      `It is shown only this once. In the mail client, log in to popgate proxy as ${account.localUser ?? account.user} with it.\n` +
      `Revoke it with: popgate proxy passwords revoke --account ${account.name} ${created.id}\n`,
  );
}

async function listPasswords(flags: PasswordFlags, ctx: CliContext): Promise<void> {
  const name = Array.isArray(flags.account) ? flags.account.at(-1) : flags.account;
  const list = await new AppPasswordStore({ file: appPasswordFile(ctx) }).list(name);
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify(list)}\n`);
    return;
  }
  if (list.length === 0) {
    ctx.stdout.write(`no app passwords${name ? ` for account ${name}` : ''}\n`);
    return;
  }
  ctx.stdout.write('id    account          label            created\n');
  for (const p of list) {
    ctx.stdout.write(`${p.id}  ${p.account.padEnd(15)}  ${p.label.padEnd(15)}  ${p.created}\n`);
  }
}

async function revokePassword(which: string, flags: PasswordFlags, ctx: CliContext): Promise<void> {
  const name = oneAccount(flags);
  const gone = await new AppPasswordStore({ file: appPasswordFile(ctx) }).revoke(name, which);
  for (const p of gone)
    ctx.stdout.write(`revoked app password ${p.id} (${p.label}) of account ${p.account}\n`);
}

export const registerProxy: RegisterCommand = (program: Command, ctx: CliContext) => {
  const proxy = program
    .command('proxy')
    .description(
      'Run a local POP3 proxy for mail clients that only know passwords: they log in with an app ' +
        '(popgate proxy passwords add), popgate logs in upstream with OAuth2. SIGHUP reloads the ' +
        'TLS certificate; SIGTERM shuts down gracefully. See docs/proxy.md.',
    )
    .option('--config <file>', 'config file with [proxy] and [accounts.NAME] tables (default: the usual one)')
    .option(
      '--listen <url>',
      'pop3://HOST:PORT (STLS offered with TLS) or pop3s://HOST:PORT; repeatable',
      collect,
    )
    .option(
      '--account <name>',
      'serve only this account (repeatable); with the flags below, an ad-hoc account',
      collect,
    )
    .option(
      '--local-password-file <file>',
      'quick trials: a file (mode 0600) whose content is the local password of the --account accounts',
    )
    .option('--local-user <name>', 'login name the legacy client uses (default: --user)')
    .option('--user <user>', 'mailbox login (the SASL user upstream)')
    .option('--host <host>', 'upstream POP3 host')
    .option('--port <port>', 'upstream POP3 port')
    .option('--tls <mode>', 'upstream TLS: implicit or starttls')
    .option('--ca <file>', 'extra CA certificate (PEM) for the upstream')
    .option('--mechanism <mech>', 'upstream SASL mechanism: XOAUTH2 or OAUTHBEARER')
    .option('--token-file <file>', 'upstream access token from this file (mode 0600)')
    .option('--token-command <cmd>', 'upstream access token from this command')
    .option('--tls-cert <file>', 'local TLS certificate chain (PEM); reloaded on SIGHUP')
    .option('--tls-key <file>', 'local TLS private key (PEM)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics and /healthz here (use 127.0.0.1)')
    .option('--log-level <level>', 'pino log level (default info)')
    .action(async (flags: ProxyFlags) => {
      await runProxy(flags, withConfig(ctx, flags.config));
      ctx.exitCode = EXIT.OK;
    });

  const passwords = proxy
    .command('passwords')
    .description(
      'Manage the app passwords legacy clients log in to the proxy with (stored as scrypt hashes).',
    );
  // `--account` and `--config` may be consumed by `proxy` itself: read them with optsWithGlobals.
  const opts = (command: Command) => command.optsWithGlobals() as PasswordFlags;
  passwords
    .command('add')
    .description('Create an app password for an account and show it once.')
    .option('--account <name>', 'the account ([accounts.NAME])')
    .option('--label <label>', 'which device it is for, e.g. phone (default "default")')
    .option('--config <file>', 'config file (default: the usual one)')
    .action(async (_flags: PasswordFlags, command: Command) => {
      const flags = opts(command);
      await addPassword(flags, withConfig(ctx, flags.config));
      ctx.exitCode = EXIT.OK;
    });
  passwords
    .command('list')
    .description('List app passwords (id, account, label, created); never the passwords.')
    .option('--account <name>', 'only this account')
    .option('--json', 'print JSON')
    .action(async (_flags: PasswordFlags, command: Command) => {
      await listPasswords(opts(command), ctx);
      ctx.exitCode = EXIT.OK;
    });
  passwords
    .command('revoke')
    .description('Revoke an app password by id or label; it stops working at the next login.')
    .argument('<id-or-label>', 'the id (first four characters of the password) or the label')
    .option('--account <name>', 'the account')
    .action(async (which: string, _flags: PasswordFlags, command: Command) => {
      await revokePassword(which, opts(command), ctx);
      ctx.exitCode = EXIT.OK;
    });
};

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
