/**
 * Options of {@link createPop3Server}, validated once at the door into a frozen copy
 * (architecture.md R6): unknown keys and bad values fail with the option's name.
 */
import type { TokenValidator } from '../auth/types.ts';
import { isLoopbackHost } from '../internal/loopback.ts';
import { OptionsChecker } from '../internal/options.ts';
import type { AuditSink } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';
import type { ServerMetrics } from '../observability/metrics.ts';
import type { MaildropStore } from '../store/types.ts';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.ts';
import type { TlsSource } from './tls.ts';

export { isLoopbackHost };

/** `implicit`: TLS from the first byte (pop3s, RFC 8314); `starttls`: plaintext with STLS (RFC 2595). */
export type ListenerKind = 'implicit' | 'starttls';

export interface ListenSpec {
  readonly kind: ListenerKind;
  readonly host: string;
  /** 0 picks a free port (see `Pop3Server.addresses`). */
  readonly port: number;
}

/** SASL mechanisms the server implements. */
export type ServerMechanism = 'OAUTHBEARER' | 'XOAUTH2';

/** An operator-supplied password check for USER/PASS; absent (the default) means no USER. */
export interface PasswordBackend {
  verify(user: string, password: string, options: { signal?: AbortSignal }): Promise<boolean>;
}

export interface Pop3ServerOptions {
  /** Listeners as specs or URLs (`pop3s://127.0.0.1:995`, `pop3://127.0.0.1:110`). */
  readonly listen: readonly (ListenSpec | string)[];
  /** Certificate and key; required unless `allowPlaintextLoopback` and no `pop3s` listener. */
  readonly tls?: TlsSource;
  /**
   * Allows running without TLS (then every listener must be loopback) and offers SASL and USER
   * in plaintext to a loopback peer on a loopback listener, and to no one else: with TLS
   * configured, any other connection must still STLS first (plaintext-policy.ts). For tests and
   * local development.
   */
  readonly allowPlaintextLoopback?: boolean;
  readonly validator: TokenValidator;
  readonly store: MaildropStore;
  /** Mechanisms offered, in CAPA order. Default: OAUTHBEARER, XOAUTH2. */
  readonly mechanisms?: readonly ServerMechanism[];
  readonly passwordBackend?: PasswordBackend;
  /** IMPLEMENTATION capability text; `false` leaves the capability out. Default `popgate`. */
  readonly implementation?: string | false;
  /** Seconds between logins of one user (RFC 2449 LOGIN-DELAY); advertised and enforced. */
  readonly loginDelaySeconds?: number;
  /** Text after `+OK` in the greeting. */
  readonly greeting?: string;
  readonly limits?: Partial<ServerLimits>;
  readonly logger?: Logger;
  readonly audit?: AuditSink;
  readonly metrics?: ServerMetrics;
}

export interface ResolvedServerOptions {
  readonly listen: readonly ListenSpec[];
  readonly tls: TlsSource | undefined;
  readonly allowPlaintextLoopback: boolean;
  readonly validator: TokenValidator;
  readonly store: MaildropStore;
  readonly mechanisms: readonly ServerMechanism[];
  readonly passwordBackend: PasswordBackend | undefined;
  readonly implementation: string | false;
  readonly loginDelaySeconds: number | undefined;
  readonly greeting: string;
  readonly limits: ServerLimits;
  readonly logger: Logger | undefined;
  readonly audit: AuditSink | undefined;
  readonly metrics: ServerMetrics | undefined;
}

const KNOWN = new Set<string>([
  'listen',
  'tls',
  'allowPlaintextLoopback',
  'validator',
  'store',
  'mechanisms',
  'passwordBackend',
  'implementation',
  'loginDelaySeconds',
  'greeting',
  'limits',
  'logger',
  'audit',
  'metrics',
]);

const check = new OptionsChecker({
  invalid: (key, what) => `server option ${key}: ${what}`,
  unknown: (key, hint) => `server option ${key}: unknown option${hint}`,
  invalidCode: 'ERR_SERVER_CONFIG',
  unknownCode: 'ERR_SERVER_CONFIG',
});

function fail(option: string, message: string): never {
  throw check.invalid(option, message);
}

/** Parses `pop3s://HOST:PORT` or `pop3://HOST:PORT` (IPv6 in brackets). */
export function parseListenUrl(value: string): ListenSpec {
  const match = /^(pop3s?):\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]]+):(\d{1,5})\/?$/.exec(value);
  if (!match) fail('listen', `"${value.slice(0, 100)}" is not pop3s://HOST:PORT or pop3://HOST:PORT`);
  const port = Number(match[3]);
  if (port > 65535) fail('listen', `port ${port} is out of range`);
  const host = match[2]!.replace(/^\[|\]$/g, '');
  return { kind: match[1] === 'pop3s' ? 'implicit' : 'starttls', host, port };
}

/** Validates and freezes server options. Throws ERR_SERVER_CONFIG naming the option. */
export function resolveServerOptions(options: Pop3ServerOptions): ResolvedServerOptions {
  check.knownKeys(options, KNOWN);
  if (!Array.isArray(options.listen) || options.listen.length === 0)
    fail('listen', 'at least one listener is needed');
  const listen = options.listen.map((spec) =>
    typeof spec === 'string' ? parseListenUrl(spec) : { ...spec },
  );
  for (const spec of listen) {
    if (spec.kind !== 'implicit' && spec.kind !== 'starttls')
      fail('listen', `unknown kind ${String(spec.kind)}`);
    if (!Number.isInteger(spec.port) || spec.port < 0 || spec.port > 65535)
      fail('listen', `bad port ${spec.port}`);
  }
  const allowPlaintextLoopback = options.allowPlaintextLoopback === true;
  if (options.tls === undefined) {
    if (!allowPlaintextLoopback) {
      fail('tls', 'a certificate and key are required (or allowPlaintextLoopback for loopback-only testing)');
    }
    for (const spec of listen) {
      if (spec.kind === 'implicit') fail('listen', 'pop3s:// needs a TLS certificate and key');
      if (!isLoopbackHost(spec.host))
        fail('listen', `plaintext without TLS is allowed on loopback only, not ${spec.host}`);
    }
  }
  if (typeof options.validator?.validate !== 'function') fail('validator', 'a TokenValidator is required');
  if (typeof options.store?.open !== 'function') fail('store', 'a MaildropStore is required');
  const mechanisms = [...(options.mechanisms ?? ['OAUTHBEARER', 'XOAUTH2'])];
  for (const m of mechanisms)
    if (m !== 'OAUTHBEARER' && m !== 'XOAUTH2') fail('mechanisms', `unknown mechanism ${m}`);
  const limits: ServerLimits = { ...DEFAULT_LIMITS };
  const userLimits = options.limits ?? {};
  new OptionsChecker({
    invalid: (key, what) => `server option ${key}: ${what}`,
    unknown: (key, hint) => `server option ${key}: unknown limit${hint}`,
    unknownCode: 'ERR_SERVER_CONFIG',
  }).knownKeys(userLimits, Object.keys(DEFAULT_LIMITS), 'limits');
  for (const [key, value] of Object.entries(userLimits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      fail(`limits.${key}`, 'must be a number ≥ 0');
    (limits as unknown as Record<string, number>)[key] = value;
  }
  if (limits.commandLineLength < 257) fail('limits.commandLineLength', 'must be at least 257 (RFC 2449 §4)');
  const implementation = options.implementation ?? 'popgate';
  if (implementation !== false && !/^[\x20-\x7e]{1,100}$/.test(implementation)) {
    fail('implementation', 'must be printable ASCII');
  }
  const greeting = options.greeting ?? 'popgate ready.';
  if (!/^[\x20-\x7e]{1,200}$/.test(greeting)) fail('greeting', 'must be printable ASCII');
  const delay =
    options.loginDelaySeconds === undefined
      ? undefined
      : check.integer(options.loginDelaySeconds, 'loginDelaySeconds', {
          min: 0,
          what: 'must be an integer ≥ 0',
        });
  return Object.freeze({
    listen: Object.freeze(listen),
    tls: options.tls,
    allowPlaintextLoopback,
    validator: options.validator,
    store: options.store,
    mechanisms: Object.freeze(mechanisms),
    passwordBackend: options.passwordBackend,
    implementation,
    loginDelaySeconds: delay,
    greeting,
    limits: Object.freeze(limits),
    logger: options.logger,
    audit: options.audit,
    metrics: options.metrics,
  });
}
