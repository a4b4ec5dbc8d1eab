/**
 * Pop3Client options, validated once at the door into a frozen copy (architecture.md R6): unknown
 * keys and bad values fail with the option's name; the caller's object is never mutated.
 */
import { type ConfigError, Pop3Error } from '../errors.ts';
import { isLoopbackHost } from '../internal/loopback.ts';
import { OptionsChecker } from '../internal/options.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { type Pop3Limits, type Pop3Timeouts, resolveLimits, resolveTimeouts } from '../protocol/limits.ts';

export { isLoopbackHost };

/**
 * - `implicit`: TLS from the first byte (RFC 8314, port 995).
 * - `starttls`: plaintext greeting, then STLS (RFC 2595); fails closed.
 * - `none-loopback-insecure`: no TLS at all; accepted only for a loopback host (tests, local
 *   proxies). Credentials then travel in the clear on this machine.
 */
export type Pop3TlsMode = 'implicit' | 'starttls' | 'none-loopback-insecure';

export interface Pop3ClientOptions {
  host: string;
  /** Default 995 for implicit TLS, 110 otherwise. */
  port?: number;
  tls?: Pop3TlsMode;
  /** Extra trusted CA certificates (PEM). Verification is always on; there is no switch to skip it. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Name checked against the certificate and sent as SNI; defaults to `host` (not sent for IPs). */
  servername?: string;
  timeouts?: Partial<Pop3Timeouts>;
  limits?: Partial<Pop3Limits>;
  logger?: Logger;
  /** Aborting it closes the connection; every pending call ends with ERR_POP3_ABORTED. */
  signal?: AbortSignal;
  /** Allow USER/PASS ({@link Pop3Client.loginWithPassword}); off by default (architecture.md practices 1-2: no passwords). */
  allowPasswordLogin?: boolean;
  /**
   * How RETR sizes are checked against LIST: `strict` (default) fails the stream with
   * ERR_POP3_SIZE_MISMATCH; `off` skips the check (for servers known to report estimates).
   */
  sizeCheck?: 'strict' | 'off';
}

export interface ResolvedClientOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: Pop3TlsMode;
  readonly ca: ReadonlyArray<string | Buffer> | undefined;
  readonly servername: string | undefined;
  readonly timeouts: Pop3Timeouts;
  readonly limits: Pop3Limits;
  readonly logger: Logger;
  readonly signal: AbortSignal | undefined;
  readonly allowPasswordLogin: boolean;
  readonly sizeCheck: 'strict' | 'off';
}

const KEYS = new Set([
  'host',
  'port',
  'tls',
  'ca',
  'servername',
  'timeouts',
  'limits',
  'logger',
  'signal',
  'allowPasswordLogin',
  'sizeCheck',
]);

const check = new OptionsChecker({
  invalid: (key, what) => `Pop3Client option "${key}" ${what}`,
  unknown: (key, hint) => `unknown Pop3Client option "${key}"${hint}`,
});
const invalid = (key: string, what: string): ConfigError => check.invalid(key, what);

export function resolveClientOptions(options: Pop3ClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
  check.knownKeys(options, KEYS);
  const { host } = options;
  if (typeof host !== 'string' || host === '' || /[\s\0]/.test(host))
    throw invalid('host', 'must be a host name');
  const tls = check.oneOf<Pop3TlsMode>(
    options.tls,
    'tls',
    ['implicit', 'starttls', 'none-loopback-insecure'],
    'implicit',
  );
  if (tls === 'none-loopback-insecure' && !isLoopbackHost(host)) {
    throw new Pop3Error(
      'ERR_POP3_PLAINTEXT_REFUSED',
      `plaintext POP3 is allowed only to a loopback host, not ${host}; use tls: "implicit" or "starttls"`,
    );
  }
  const port = check.integer(
    options.port,
    'port',
    { min: 1, max: 65535, what: 'must be an integer 1-65535' },
    tls === 'implicit' ? 995 : 110,
  );
  let ca: ReadonlyArray<string | Buffer> | undefined;
  if (options.ca !== undefined) {
    const list = Array.isArray(options.ca) ? options.ca : [options.ca];
    for (const item of list) {
      if (typeof item !== 'string' && !Buffer.isBuffer(item))
        throw invalid('ca', 'must be PEM text or a Buffer');
    }
    ca = Object.freeze([...list]);
  }
  if (
    options.servername !== undefined &&
    (typeof options.servername !== 'string' || options.servername === '')
  ) {
    throw invalid('servername', 'must be a non-empty string');
  }
  const logger = options.logger ?? silentLogger;
  if (typeof logger.debug !== 'function') throw invalid('logger', 'must implement debug/info/warn/error');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalid('signal', 'must be an AbortSignal');
  }
  const sizeCheck = check.oneOf(options.sizeCheck, 'sizeCheck', ['strict', 'off'], 'strict');
  return Object.freeze({
    host,
    port,
    tls,
    ca,
    servername: options.servername,
    timeouts: resolveTimeouts(options.timeouts),
    limits: resolveLimits(options.limits),
    logger,
    signal: options.signal,
    allowPasswordLogin: options.allowPasswordLogin === true,
    sizeCheck,
  });
}
