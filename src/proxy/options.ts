/**
 * Options of {@link createPop3Proxy}, validated once at the door into a frozen copy
 * (architecture.md R6). The rule that matters most lives here: a listener on a non-loopback
 * address needs local TLS, and the proxy refuses to start without it, saying why.
 */
import type { TokenProvider } from '../client/login.ts';
import type { Pop3TlsMode } from '../client/options.ts';
import { PopgateError } from '../errors.ts';
import { isLoopbackHost } from '../internal/loopback.ts';
import type { Logger } from '../observability/logger.ts';
import { DEFAULT_LIMITS, type ServerLimits } from '../server/limits.ts';
import { type ListenSpec, parseListenUrl } from '../server/options.ts';
import type { TlsSource } from '../server/tls.ts';
import type { ProxyAuditSink } from './audit.ts';
import type { ProxyMetrics } from './metrics.ts';

/** Where and how an account's mailbox is reached upstream. */
export interface UpstreamSettings {
  readonly host: string;
  readonly port?: number;
  readonly tls: Exclude<Pop3TlsMode, 'none-loopback-insecure'> | 'none-loopback-insecure';
  /** Extra trusted CA certificates (PEM); verification is always on. */
  readonly ca?: string | Buffer;
  /** The SASL mechanism; default OAUTHBEARER when offered, else XOAUTH2. */
  readonly mechanism?: 'XOAUTH2' | 'OAUTHBEARER';
  /** The SASL user upstream: the mailbox (for a shared mailbox, its address). */
  readonly user: string;
  /** Always send the SASL response on its own line (`AUTH XOAUTH2`, `+`, response): Exchange Online. */
  readonly twoStep?: boolean;
}

/** One account the proxy serves. */
export interface ProxyAccount {
  /** The account name (`[accounts.NAME]`): app passwords and the re-login message use it. */
  readonly name: string;
  /** The login name legacy clients send (compared without regard to case). */
  readonly localUser: string;
  readonly upstream: UpstreamSettings;
  /** Access tokens for the upstream login (the token manager in the CLI). */
  readonly token: TokenProvider;
}

/** The local password check: the app password's id and label, or undefined when wrong. */
export type LocalPasswordCheck = (
  account: string,
  password: string,
) => Promise<{ readonly id: string; readonly label: string } | undefined>;

/** The proxy's bounds; unset fields take {@link DEFAULT_PROXY_LIMITS}. */
export interface ProxyLimits extends ServerLimits {
  /** Upstream sessions open at once per account; more get `-ERR [IN-USE]`. */
  readonly maxConnectionsPerAccount: number;
}

export const DEFAULT_PROXY_LIMITS: ProxyLimits = Object.freeze({
  ...DEFAULT_LIMITS,
  maxConnections: 500,
  maxConnectionsPerIp: 50,
  // The server's per-user bound is its own maildrop's; the proxy bounds accounts instead.
  maxConnectionsPerUser: 1_000,
  maxConnectionsPerAccount: 4,
});

export interface Pop3ProxyOptions {
  /** `pop3://HOST:PORT` (STLS when there is TLS) or `pop3s://HOST:PORT`; port 0 picks one. */
  readonly listen: readonly (ListenSpec | string)[];
  /** Local TLS: the operator's certificate and key (or a self-signed pair). */
  readonly tls?: TlsSource;
  /** Accept credentials without TLS when listener and client are both loopback. Default true. */
  readonly plaintextLoopback?: boolean;
  readonly accounts: readonly ProxyAccount[];
  readonly checkPassword: LocalPasswordCheck;
  readonly limits?: Partial<ProxyLimits>;
  readonly greeting?: string;
  readonly logger?: Logger;
  readonly metrics?: ProxyMetrics;
  readonly audit?: ProxyAuditSink;
  /** Upstream connect/command timeouts in ms (Pop3Client `timeouts`). */
  readonly upstreamTimeouts?: { connectMs?: number; commandMs?: number };
}

export interface ResolvedProxyOptions {
  readonly listen: readonly ListenSpec[];
  readonly tls: TlsSource | undefined;
  readonly plaintextLoopback: boolean;
  /** Accounts by lower-cased local user. */
  readonly accounts: ReadonlyMap<string, ProxyAccount>;
  readonly checkPassword: LocalPasswordCheck;
  readonly limits: ProxyLimits;
  readonly greeting: string;
  readonly logger: Logger | undefined;
  readonly metrics: ProxyMetrics | undefined;
  readonly audit: ProxyAuditSink | undefined;
  readonly upstreamTimeouts: { connectMs?: number; commandMs?: number };
}

function fail(message: string): never {
  throw new PopgateError('ERR_PROXY_CONFIG', message);
}

export function resolveProxyOptions(options: Pop3ProxyOptions): ResolvedProxyOptions {
  if (!Array.isArray(options.listen) || options.listen.length === 0) fail('the proxy needs a listener');
  const listen = options.listen.map((spec) => {
    if (typeof spec !== 'string') return { ...spec };
    try {
      return parseListenUrl(spec);
    } catch {
      return fail(`listen "${String(spec).slice(0, 100)}" is not pop3://HOST:PORT or pop3s://HOST:PORT`);
    }
  });
  for (const spec of listen) {
    if (options.tls !== undefined) continue;
    if (spec.kind === 'implicit') {
      fail(`pop3s://${spec.host}:${spec.port} needs local TLS: set tls_cert and tls_key, or self_signed`);
    }
    if (!isLoopbackHost(spec.host)) {
      fail(
        `refusing to listen on ${spec.host} without local TLS: app passwords would cross the network in clear text. ` +
          'Set tls_cert and tls_key (or self_signed = true), or listen on 127.0.0.1',
      );
    }
  }
  if (typeof options.checkPassword !== 'function') fail('checkPassword must be a function');
  const accounts = new Map<string, ProxyAccount>();
  for (const account of options.accounts ?? []) {
    const key = account.localUser.toLowerCase();
    if (key === '' || /[\s\0]/.test(key)) fail(`account ${account.name}: the local user must be one word`);
    const other = accounts.get(key);
    if (other !== undefined) {
      fail(
        `accounts ${other.name} and ${account.name} both answer to the login name ${account.localUser}; give one a local_user`,
      );
    }
    if (typeof account.token !== 'function') fail(`account ${account.name}: no token provider`);
    accounts.set(key, Object.freeze({ ...account }));
  }
  if (accounts.size === 0) fail('the proxy serves no account: configure [accounts.NAME] or pass --account');
  const limits: ProxyLimits = { ...DEFAULT_PROXY_LIMITS };
  for (const [key, value] of Object.entries(options.limits ?? {})) {
    if (!(key in DEFAULT_PROXY_LIMITS)) fail(`unknown proxy limit ${key}`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      fail(`proxy limit ${key} must be a number ≥ 0`);
    }
    (limits as unknown as Record<string, number>)[key] = value;
  }
  const greeting = options.greeting ?? 'popgate proxy ready.';
  if (!/^[\x20-\x7e]{1,200}$/.test(greeting)) fail('the greeting must be printable ASCII');
  return Object.freeze({
    listen: Object.freeze(listen),
    tls: options.tls,
    plaintextLoopback: options.plaintextLoopback !== false,
    accounts,
    checkPassword: options.checkPassword,
    limits: Object.freeze(limits),
    greeting,
    logger: options.logger,
    metrics: options.metrics,
    audit: options.audit,
    upstreamTimeouts: { ...options.upstreamTimeouts },
  });
}
