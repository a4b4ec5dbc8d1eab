// `popgate serve`: the POP3 server that accepts OAuth2. Reads the `[server]` table of a config
// file (--config) and flags for the essentials, wires pino, prom-client and the token validator,
// reloads TLS on SIGHUP and shuts down gracefully on SIGTERM/SIGINT. See docs/server.md. Just
// over 400 lines (architecture.md R1): the issuer wiring (tables, CA files, the start-up check)
// stays with the rest of the setup it is merged into.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { type AuthEvent, createTokenValidator, type PopgateTokenValidator } from '../../auth/index.ts';
import { ConfigError, isPopgateError } from '../../errors.ts';
import { readCaFile } from '../../internal/ca-file.ts';
import { didYouMean } from '../../internal/options.ts';
import { createAuditSink } from '../../observability/audit.ts';
import type { Logger } from '../../observability/logger.ts';
import {
  createServerMetrics,
  type MetricsListener,
  startMetricsListener,
} from '../../observability/metrics.ts';
import { DEFAULT_LIMITS, type ServerLimits } from '../../server/limits.ts';
import type { Pop3ServerOptions, ServerMechanism } from '../../server/options.ts';
import { createPop3Server } from '../../server/server.ts';
import { MaildirStore } from '../../store/maildir-store.ts';
import { parseStoreSpec } from '../../store/spec.ts';
import type { RegisterCommand } from '../command.ts';
import { parseConfig } from '../config.ts';
import { SERVER_ISSUER_SETTINGS } from '../config-schema.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';

interface ServeFlags {
  config?: string;
  listen?: string[];
  tlsCert?: string;
  tlsKey?: string;
  issuer?: string;
  audience?: string;
  jwks?: string;
  issuerCa?: string;
  userClaim?: string;
  readScope?: string;
  deleteScope?: string;
  allowMissingTyp?: boolean;
  store?: string;
  metrics?: string;
  allowPlaintextLoopback?: boolean;
  allowInsecureIssuer?: boolean;
  logLevel?: string;
}

const SERVER_KEYS = new Set([
  'listen',
  'tls_cert',
  'tls_key',
  'allow_plaintext_loopback',
  'store',
  'store_sync_read_max_bytes',
  'metrics',
  'implementation',
  'login_delay',
  'greeting',
  'mechanisms',
  'shutdown_grace_seconds',
  'log_level',
  'limits',
  'validation',
  'issuers',
]);

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function bad(key: string, what: string): never {
  throw new ConfigError('ERR_CONFIG_INVALID', `server.${key} ${what}`, { key: `server.${key}` });
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** snake_case keys to camelCase, recursively (tables only; arrays of tables too). */
function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (!isTable(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), camelize(v)]));
}

/** Older names of `[server.limits]` keys, still read so existing configs keep working. */
const LIMIT_ALIASES: Readonly<Record<string, keyof ServerLimits>> = { saslResponseLength: 'maxSaslResponse' };

/** Reads an issuer's CA file, checked (internal/ca-file.ts); a problem is a ConfigError naming `key` (exit 78). */
async function readIssuerCa(file: unknown, key: string): Promise<string> {
  if (typeof file !== 'string' || file === '') {
    throw new ConfigError('ERR_CONFIG_INVALID', `${key} must be the path of a PEM CA file`, { key });
  }
  return readCaFile(resolve(file), key).catch((error: unknown) => {
    throw isPopgateError(error)
      ? new ConfigError('ERR_CONFIG_INVALID', `${key}: ${error.message}`, { key })
      : error;
  });
}

/**
 * Issuer tables: `jwks` (file or URL), `ca` (a PEM file) and `introspection.client_secret_file`
 * become options; the other keys are the validator's, snake_case.
 */
async function issuerOptions(raw: unknown, index: number): Promise<Record<string, unknown>> {
  if (!isTable(raw)) bad(`issuers[${index}]`, 'must be a table');
  const known = SERVER_ISSUER_SETTINGS.map((spec) => spec.key);
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      throw new ConfigError(
        'ERR_CONFIG_UNKNOWN_KEY',
        `unknown key server.issuers[${index}].${key}${didYouMean(key, known)} (known: ${known.join(', ')})`,
        { key: `server.issuers[${index}].${key}` },
      );
    }
  }
  const issuer = camelize(raw) as Record<string, unknown>;
  if (issuer.ca !== undefined) issuer.ca = await readIssuerCa(issuer.ca, `server.issuers[${index}].ca`);
  const jwks = issuer.jwks;
  if (jwks !== undefined) {
    delete issuer.jwks;
    if (typeof jwks !== 'string') bad(`issuers[${index}].jwks`, 'must be a file path or URL');
    if (/^https?:\/\//.test(jwks)) issuer.jwksUrl = jwks;
    else issuer.jwksFile = resolve(jwks);
  }
  const intro = issuer.introspection;
  if (isTable(intro) && intro.clientSecretFile !== undefined) {
    const file = intro.clientSecretFile;
    if (typeof file !== 'string') bad(`issuers[${index}].introspection.client_secret_file`, 'must be a path');
    delete intro.clientSecretFile;
    intro.clientSecret = (await readFile(file, 'utf8')).trim();
  }
  return issuer;
}

export interface ServeSetup {
  readonly server: Omit<Pop3ServerOptions, 'validator' | 'store' | 'logger' | 'audit' | 'metrics'>;
  readonly validatorOptions: Record<string, unknown>;
  readonly storeSpec: string;
  /** Maildir messages up to this size are read with blocking calls (0: always the thread pool). */
  readonly storeSyncReadMaxBytes: number | undefined;
  readonly metrics: { host: string; port: number } | undefined;
  readonly graceMs: number;
  readonly logLevel: string;
}

/** Merges the config file's `[server]` table and flags (flags win) into validated pieces. */
export async function resolveServeSetup(flags: ServeFlags): Promise<ServeSetup> {
  let table: Record<string, unknown> = {};
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.config, 'utf8');
    } catch (error) {
      throw new ConfigError('ERR_CONFIG_INVALID', `cannot read ${flags.config}: ${(error as Error).message}`);
    }
    table = { ...(parseConfig(text, flags.config).server ?? {}) };
  }
  for (const key of Object.keys(table)) {
    if (!SERVER_KEYS.has(key)) {
      throw new ConfigError('ERR_CONFIG_UNKNOWN_KEY', `unknown key server.${key}`, { key: `server.${key}` });
    }
  }
  const listen = flags.listen?.length ? flags.listen : table.listen;
  if (!Array.isArray(listen) || listen.length === 0 || !listen.every((l) => typeof l === 'string')) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      'serve needs --listen pop3s://HOST:PORT or pop3://HOST:PORT',
      {
        key: 'listen',
      },
    );
  }
  const certFile = flags.tlsCert ?? table.tls_cert;
  const keyFile = flags.tlsKey ?? table.tls_key;
  if ((certFile === undefined) !== (keyFile === undefined)) bad('tls_cert', 'and tls_key go together');
  if (certFile !== undefined && (typeof certFile !== 'string' || typeof keyFile !== 'string')) {
    bad('tls_cert', 'must be a path');
  }
  const storeSpec = flags.store ?? table.store;
  if (typeof storeSpec !== 'string') {
    throw new ConfigError('ERR_CONFIG_MISSING', 'serve needs --store maildir:DIR', { key: 'store' });
  }
  const syncRead = table.store_sync_read_max_bytes;
  if (
    syncRead !== undefined &&
    (typeof syncRead !== 'number' || !Number.isSafeInteger(syncRead) || syncRead < 0)
  ) {
    bad(
      'store_sync_read_max_bytes',
      'must be a whole number of octets (0 reads every message through the thread pool)',
    );
  }
  const limits: Partial<Record<keyof ServerLimits, number>> = {};
  if (table.limits !== undefined) {
    if (!isTable(table.limits)) bad('limits', 'must be a table');
    for (const [key, value] of Object.entries(table.limits)) {
      const name = (LIMIT_ALIASES[camel(key)] ?? camel(key)) as keyof ServerLimits;
      if (!(name in DEFAULT_LIMITS)) {
        throw new ConfigError('ERR_CONFIG_UNKNOWN_KEY', `unknown key server.limits.${key}`, {
          key: `server.limits.${key}`,
        });
      }
      if (typeof value !== 'number') bad(`limits.${key}`, 'must be a number');
      limits[name] = value;
    }
  }
  // Issuers: the config's [[server.issuers]], or one from --issuer/--audience/--jwks.
  const issuers: Record<string, unknown>[] = [];
  if (flags.issuer !== undefined) {
    const issuer: Record<string, unknown> = { issuer: flags.issuer };
    if (flags.audience !== undefined) issuer.audience = flags.audience;
    if (flags.jwks !== undefined) {
      if (/^https?:\/\//.test(flags.jwks)) issuer.jwksUrl = flags.jwks;
      else issuer.jwksFile = resolve(flags.jwks);
    }
    if (flags.issuerCa !== undefined) issuer.ca = await readIssuerCa(flags.issuerCa, '--issuer-ca');
    if (flags.userClaim !== undefined) issuer.userClaim = flags.userClaim;
    if (flags.allowMissingTyp) issuer.allowMissingTyp = true;
    if (flags.readScope !== undefined || flags.deleteScope !== undefined) {
      issuer.scopes = {
        ...(flags.readScope !== undefined ? { read: flags.readScope } : {}),
        ...(flags.deleteScope !== undefined ? { delete: flags.deleteScope } : {}),
      };
    }
    issuers.push(issuer);
  } else if (flags.issuerCa !== undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', '--issuer-ca goes with --issuer (in a config file use ca)', {
      key: 'issuerCa',
    });
  } else if (Array.isArray(table.issuers)) {
    for (const [i, raw] of table.issuers.entries()) issuers.push(await issuerOptions(raw, i));
  }
  if (issuers.length === 0) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      'serve needs --issuer URL --audience AUD (or [[server.issuers]])',
      {
        key: 'issuers',
      },
    );
  }
  const validation =
    table.validation === undefined ? {} : (camelize(table.validation) as Record<string, unknown>);
  if (!isTable(validation)) bad('validation', 'must be a table');
  if (flags.allowInsecureIssuer) validation.allowInsecureLoopback = true;
  let metrics: ServeSetup['metrics'];
  const metricsSpec = flags.metrics ?? table.metrics;
  if (metricsSpec !== undefined) {
    const match =
      typeof metricsSpec === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(metricsSpec) : null;
    if (!match) bad('metrics', 'must be HOST:PORT, e.g. 127.0.0.1:9110');
    metrics = { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
  }
  const server: ServeSetup['server'] = {
    listen: listen as string[],
    ...(certFile !== undefined ? { tls: { certFile: certFile as string, keyFile: keyFile as string } } : {}),
    allowPlaintextLoopback: flags.allowPlaintextLoopback === true || table.allow_plaintext_loopback === true,
    limits,
    ...(table.implementation !== undefined ? { implementation: table.implementation as string | false } : {}),
    ...(table.login_delay !== undefined ? { loginDelaySeconds: table.login_delay as number } : {}),
    ...(table.greeting !== undefined ? { greeting: table.greeting as string } : {}),
    ...(table.mechanisms !== undefined ? { mechanisms: table.mechanisms as ServerMechanism[] } : {}),
  };
  const grace = table.shutdown_grace_seconds ?? 30;
  if (typeof grace !== 'number' || grace < 0) bad('shutdown_grace_seconds', 'must be a number ≥ 0');
  const logLevel = flags.logLevel ?? (table.log_level as string | undefined) ?? 'info';
  return {
    server,
    validatorOptions: { ...validation, issuers },
    storeSpec,
    storeSyncReadMaxBytes: syncRead as number | undefined,
    metrics,
    graceMs: grace * 1000,
    logLevel,
  };
}

async function serve(flags: ServeFlags, ctx: CliContext): Promise<void> {
  const setup = await resolveServeSetup(flags);
  const log = pino({ level: setup.logLevel, base: { service: 'popgate' } }, ctx.stderr);
  const logger = log as unknown as Logger;
  const metrics = createServerMetrics();
  const onAuthEvent = (event: AuthEvent) => {
    if (event.type === 'cache') metrics.tokenCache.inc({ outcome: event.outcome });
    else if (event.type === 'jwks-fetch') metrics.jwksRefreshes.inc({ outcome: event.outcome });
  };
  const validator: PopgateTokenValidator = createTokenValidator(setup.validatorOptions, {
    logger: logger.child?.({ part: 'auth' }) ?? logger,
    onEvent: onAuthEvent,
  });
  const spec = parseStoreSpec(setup.storeSpec);
  const store = new MaildirStore(spec.root, {
    logger: logger.child?.({ part: 'store' }) ?? logger,
    ...(setup.storeSyncReadMaxBytes !== undefined ? { syncReadMaxBytes: setup.storeSyncReadMaxBytes } : {}),
  });
  const server = createPop3Server({
    ...setup.server,
    validator,
    store,
    logger,
    audit: createAuditSink(logger.child?.({ part: 'audit' }) ?? logger),
    metrics,
  });
  const addresses = await server.listen();
  let closing = false;
  let metricsListener: MetricsListener | undefined;
  if (setup.metrics !== undefined) {
    metricsListener = await startMetricsListener(metrics, { ...setup.metrics, healthy: () => !closing });
    ctx.stdout.write(`metrics http://${setup.metrics.host}:${metricsListener.address.port}/metrics\n`);
  }
  for (const a of addresses) ctx.stdout.write(`listening ${a.url}\n`);
  // Check every issuer now (discovery, JWKS) and say plainly which cannot be used, and why. The
  // server runs anyway, as Dovecot does: the identity provider may come up later, and until it
  // does its logins answer [SYS/TEMP].
  validator.checkIssuers().then((checks) => {
    for (const check of checks) {
      if (check.ok) {
        logger.info(
          { issuer: check.issuer },
          check.contacted
            ? 'identity provider reachable'
            : 'identity provider not contacted at start-up (keys from a file, introspection endpoint configured)',
        );
        continue;
      }
      const fields = {
        issuer: check.issuer,
        reason: check.reason,
        ...(check.hint ? { hint: check.hint } : {}),
      };
      logger.warn(fields, 'identity provider not reachable yet');
      ctx.stderr.write(
        `popgate serve: issuer ${check.issuer} cannot be used yet: ${check.reason}` +
          `${check.hint ? `; ${check.hint}` : ''}. Its logins answer [SYS/TEMP] until it can.\n`,
      );
    }
  });
  await new Promise<void>((resolve) => {
    const onHup = () => {
      server
        .reloadTls()
        .catch((error) =>
          logger.error(
            { code: isPopgateError(error) ? error.code : undefined, reason: (error as Error).message },
            'TLS reload failed',
          ),
        );
    };
    const onStop = () => {
      if (closing) return;
      closing = true;
      process.off('SIGHUP', onHup);
      logger.info({}, 'shutting down');
      server
        .close({ graceMs: setup.graceMs })
        .then(() => metricsListener?.close())
        .then(() => store.close())
        .then(() => validator.close())
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

export const registerServe: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('serve')
    .description(
      'Run the POP3 server that accepts OAuth2 bearer tokens (SASL OAUTHBEARER and XOAUTH2). ' +
        'SIGHUP reloads the TLS certificate; SIGTERM shuts down gracefully.',
    )
    .option('--config <file>', 'config file whose [server] table holds the settings (see docs/server.md)')
    .option(
      '--listen <url>',
      'pop3s://HOST:PORT (implicit TLS) or pop3://HOST:PORT (STLS); repeatable',
      collect,
    )
    .option('--tls-cert <file>', 'TLS certificate chain (PEM); reloaded on SIGHUP')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--issuer <url>', 'trusted token issuer (its exact iss)')
    .option('--audience <aud>', 'audience this server accepts in aud')
    .option('--jwks <file|url>', "the issuer's JWKS; default: from discovery")
    .option(
      '--issuer-ca <file>',
      "CA certificate(s), PEM, trusted for the issuer's discovery, JWKS and introspection (a private CA)",
    )
    .option('--user-claim <claim>', 'claim holding the login name: email, preferred_username, upn, sub')
    .option('--read-scope <scope>', 'scope needed to log in (default pop3)')
    .option('--delete-scope <scope>', 'scope needed for DELE (default: the read scope)')
    .option('--allow-missing-typ', 'accept JWTs without a typ header (providers that do not set at+jwt)')
    .option('--store <spec>', 'maildrop store: maildir:/absolute/dir (each user at DIR/<user>/)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics and /healthz here (use 127.0.0.1)')
    .option('--allow-plaintext-loopback', 'run without TLS on loopback listeners (testing only)')
    .option('--allow-insecure-issuer', 'allow an http:// issuer on loopback (testing only)')
    .option('--log-level <level>', 'pino log level (default info)')
    .action(async (flags: ServeFlags) => {
      await serve(flags, ctx);
      ctx.exitCode = EXIT.OK;
    });
};

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
