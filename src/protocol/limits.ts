/**
 * The wire bounds shared by client and server, in one place (architecture.md R7); the server's session
 * bounds (idle, total time, commands, failed logins) live in src/server/limits.ts. Callers
 * override a subset through {@link resolveLimits}, which validates at the door and returns a
 * frozen copy.
 */
import { ConfigError } from '../errors.ts';

export interface Pop3Limits {
  /**
   * Longest response or command line, in octets including CRLF. RFC 2449 §4 caps responses at
   * 512 octets; real servers send longer CAPA/IMPLEMENTATION lines, so the default is roomier.
   */
  readonly maxLineLength: number;
  /** Longest command line a client may send, in octets including CRLF (RFC 2449 §4: 255). */
  readonly maxCommandLength: number;
  /** Largest multi-line response other than RETR/TOP bodies (LIST, UIDL, CAPA), in octets. */
  readonly maxMultilineResponse: number;
  /** Largest message RETR or TOP may deliver, in octets after dot-unstuffing. */
  readonly maxMessageSize: number;
  /** Largest SASL response line (base64) a server accepts (64 KiB: room for any provider's token). */
  readonly maxSaslResponse: number;
  /** Commands a client keeps in flight when the server offers PIPELINING. */
  readonly maxPipelineDepth: number;
  /**
   * Octets of expected answers (RETR sizes from LIST) a client keeps in flight with PIPELINING;
   * two commands may always be in flight. It bounds the work queued at the server and what an
   * abort discards; the client's own memory is bounded by body-stream backpressure.
   */
  readonly maxPipelineBytes: number;
  /** Octets of untrusted text (server text, rejected input) kept for logs and errors. */
  readonly maxLoggedText: number;
}

export const DEFAULT_WIRE_LIMITS: Pop3Limits = Object.freeze({
  maxLineLength: 8192,
  maxCommandLength: 255,
  maxMultilineResponse: 64 * 1024 * 1024,
  maxMessageSize: 1024 * 1024 * 1024,
  maxSaslResponse: 64 * 1024,
  maxPipelineDepth: 1024,
  maxPipelineBytes: 4 * 1024 * 1024,
  maxLoggedText: 1024,
});

export interface Pop3Timeouts {
  /** TCP (and implicit TLS) connection set-up, ms. */
  readonly connect: number;
  /** Wait for the server greeting after connecting, ms. */
  readonly greeting: number;
  /** No byte in either direction while a command is pending, ms. */
  readonly idle: number;
  /** Whole command from write to the end of its answer (a RETR body resets it on progress), ms. */
  readonly command: number;
}

export const DEFAULT_TIMEOUTS: Pop3Timeouts = Object.freeze({
  connect: 15_000,
  greeting: 30_000,
  idle: 60_000,
  command: 120_000,
});

function resolveNumbers<T extends object>(
  what: string,
  defaults: T,
  overrides: Partial<Record<keyof T, number>> | undefined,
  min: number,
): Readonly<T> {
  const out: Record<string, number> = { ...(defaults as Record<string, number>) };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (!(key in defaults)) {
      throw new ConfigError('ERR_CONFIG_UNKNOWN_KEY', `unknown ${what} "${key}"`, { key });
    }
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `${what} "${key}" must be an integer >= ${min}, got ${String(value)}`,
        { key },
      );
    }
    out[key] = value;
  }
  return Object.freeze(out) as unknown as Readonly<T>;
}

/** Defaults overlaid with `overrides`; unknown keys and non-positive integers are refused. */
export function resolveLimits(overrides?: Partial<Pop3Limits>): Pop3Limits {
  const limits = resolveNumbers('limit', DEFAULT_WIRE_LIMITS, overrides, 1);
  if (limits.maxLineLength < 64) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'limit "maxLineLength" must be at least 64', {
      key: 'maxLineLength',
    });
  }
  return limits;
}

/** Defaults overlaid with `overrides` (milliseconds); unknown keys and bad values are refused. */
export function resolveTimeouts(overrides?: Partial<Pop3Timeouts>): Pop3Timeouts {
  return resolveNumbers('timeout', DEFAULT_TIMEOUTS, overrides, 1);
}
