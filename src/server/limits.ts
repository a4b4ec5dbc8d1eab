/**
 * Every bound the server enforces, in one place (architecture.md R7): the configurable ones
 * ({@link ServerLimits}) and the fixed ones of a session's input and output; plus the two
 * stateful guards: connection counting per IP and per user, and failed-login throttling with
 * growing delays.
 */
import { DEFAULT_WIRE_LIMITS } from '../protocol/limits.ts';

/** The server's limits; every field has a default in {@link DEFAULT_LIMITS}. */
export interface ServerLimits {
  /** Longest command line in octets including CRLF (RFC 2449 §4: 255 octets, plus slack). */
  readonly commandLineLength: number;
  /**
   * Longest SASL response line (base64) in octets; separate from the command cap. The same bound,
   * by the same name and default, as the client's (src/protocol/limits.ts). Config key
   * `max_sasl_response` (`sasl_response_length`, its older name, is still read).
   */
  readonly maxSaslResponse: number;
  /** Idle time before the session is closed (RFC 1939 §3: at least 10 minutes). */
  readonly idleTimeoutMs: number;
  /** Longest a session may last, whatever it does. */
  readonly maxSessionMs: number;
  /** Extra time a session may outlive its access token's `exp`. */
  readonly tokenExpiryGraceMs: number;
  /** Commands a session may send before it is closed. */
  readonly maxCommandsPerSession: number;
  /**
   * Commands a session may send before it has logged in (any command, answered or refused),
   * then `-ERR Too many commands before login; closing.` A real client needs about ten (CAPA,
   * STLS, CAPA, a few AUTH or USER/PASS tries); a peer that keeps a connection busy without
   * logging in is shown the door, as Dovecot's login process does.
   */
  readonly maxCommandsBeforeLogin: number;
  /** Concurrent connections to the whole server. */
  readonly maxConnections: number;
  /** Concurrent connections from one remote address. */
  readonly maxConnectionsPerIp: number;
  /** Concurrent logged-in sessions of one user. */
  readonly maxConnectionsPerUser: number;
  /** Failed logins in one session before it is closed. */
  readonly maxFailedLoginsPerSession: number;
  /** First delay before answering a failed login; it doubles with each further failure. */
  readonly failedLoginDelayMs: number;
  /** Ceiling of the failed-login delay. */
  readonly maxFailedLoginDelayMs: number;
  /** How long a failed login is remembered for the per-IP and per-user delays. */
  readonly failedLoginWindowMs: number;
  /** How long to wait for the TLS handshake (implicit TLS and STLS). */
  readonly tlsHandshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  commandLineLength: 512,
  maxSaslResponse: DEFAULT_WIRE_LIMITS.maxSaslResponse,
  idleTimeoutMs: 10 * 60_000,
  maxSessionMs: 4 * 3_600_000,
  tokenExpiryGraceMs: 60_000,
  maxCommandsPerSession: 1_000_000,
  maxCommandsBeforeLogin: 30,
  maxConnections: 5_000,
  maxConnectionsPerIp: 100,
  maxConnectionsPerUser: 10,
  maxFailedLoginsPerSession: 3,
  failedLoginDelayMs: 1_000,
  maxFailedLoginDelayMs: 15_000,
  failedLoginWindowMs: 15 * 60_000,
  tlsHandshakeTimeoutMs: 30_000,
});

// --- fixed bounds of one session (not configurable) ---------------------------------------

/**
 * Room an `AUTH` line has beyond {@link ServerLimits.maxSaslResponse}: RFC 5034 §4 lets the
 * initial response ride on the command line, after `AUTH`, a SASL mechanism name (at most 20
 * characters, RFC 4422 §3.1) and two spaces, and before CRLF: 29 octets, rounded up.
 */
export const AUTH_LINE_ROOM = 64;

/**
 * The longest line a session reads: an `AUTH` line with an initial response as long as the SASL
 * cap. It is the line reader's hard cap; ordinary command lines are held to the shorter
 * `commandLineLength` when parsed.
 */
export function authLineLength(limits: Pick<ServerLimits, 'maxSaslResponse'>): number {
  return limits.maxSaslResponse + AUTH_LINE_ROOM;
}

/**
 * Octets of unread pipelined input after which the socket is paused (backpressure): a client
 * that pipelines faster than its answers go out must not grow the session's memory. 256 KiB
 * holds thousands of pipelined commands, far more than any real client keeps in flight.
 */
export const INPUT_HIGH_WATER = 256 * 1024;

/**
 * Octets of answers queued for the peer (the socket's `writableLength` plus the writer's batch)
 * past which the session stops: no further input is read or parsed, for any command in any
 * state, until the socket drains (answer-writer.ts). Dovecot does the same with its 4 KiB
 * POP3_OUTBUF_THROTTLE_SIZE. So a client that pipelines and never reads holds at most this
 * plus one answer in the server's memory. Larger than the socket's own 16 KiB mark so that a
 * pipelined burst of small RETRs goes out in few large writes (and few TLS records).
 */
export const OUTPUT_HIGH_WATER = 128 * 1024;

/**
 * While more commands are queued (a pipelined burst), answers are copied into a batch of this
 * size and handed to the socket as one Buffer: one allocation and one queued write per ~64 KiB
 * instead of several per message. Interactive commands (nothing queued) are written directly.
 */
export const BATCH_SIZE = 64 * 1024;

/**
 * Malformed or unknown commands tolerated before the session is closed: enough for a client
 * probing extensions (CAPA-less clients try a few verbs), few enough that a non-POP3 peer
 * (an HTTP request, a port scanner) is shown the door quickly.
 */
export const MAX_BAD_COMMANDS = 20;

/**
 * After a graceful end (QUIT, timeouts, limits) the socket is half-closed so the last answer
 * still goes out; a peer that never reads must not hold the session open longer than this.
 */
export const CLOSE_GRACE_MS = 5_000;

/** Counts live connections per key (remote address, or user) against a ceiling. */
export class ConnectionCounter {
  readonly #counts = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a slot for `key`; false (and nothing taken) when the key is at its ceiling. */
  acquire(key: string): boolean {
    const current = this.#counts.get(key) ?? 0;
    if (current >= this.#max) return false;
    this.#counts.set(key, current + 1);
    return true;
  }

  release(key: string): void {
    const current = this.#counts.get(key) ?? 0;
    if (current <= 1) this.#counts.delete(key);
    else this.#counts.set(key, current - 1);
  }

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
}

interface FailureRecord {
  count: number;
  last: number;
}

/**
 * Failed-login memory per remote address and per user, giving a growing delay before a failure
 * is answered. Only failures the client caused are recorded: an identity-provider outage
 * ([SYS/TEMP]) must not penalise anyone. The map is bounded: the oldest entries go first.
 */
export class LoginThrottle {
  readonly #records = new Map<string, FailureRecord>();
  readonly #limits: ServerLimits;
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(limits: ServerLimits, now: () => number = Date.now, maxEntries = 100_000) {
    this.#limits = limits;
    this.#now = now;
    this.#maxEntries = maxEntries;
  }

  /** Records a failure for the address and (when known) the user. */
  recordFailure(ip: string, user: string | undefined): void {
    for (const key of keys(ip, user)) {
      const record = this.#fresh(key) ?? { count: 0, last: 0 };
      record.count += 1;
      record.last = this.#now();
      this.#records.delete(key);
      this.#records.set(key, record);
    }
    while (this.#records.size > this.#maxEntries) {
      const oldest = this.#records.keys().next().value;
      if (oldest === undefined) break;
      this.#records.delete(oldest);
    }
  }

  /** Forgets the user's failures after a successful login (the address keeps its record). */
  recordSuccess(user: string): void {
    this.#records.delete(`user:${user}`);
  }

  /** Recent failures counted for the address or the user, whichever is larger. */
  failures(ip: string, user: string | undefined): number {
    let worst = 0;
    for (const key of keys(ip, user)) worst = Math.max(worst, this.#fresh(key)?.count ?? 0);
    return worst;
  }

  /** Delay before answering a failed login: base × 2^(failures-1), capped. */
  delayMs(ip: string, user: string | undefined): number {
    const n = this.failures(ip, user);
    if (n === 0 || this.#limits.failedLoginDelayMs === 0) return 0;
    const delay = this.#limits.failedLoginDelayMs * 2 ** Math.min(n - 1, 20);
    return Math.min(delay, this.#limits.maxFailedLoginDelayMs);
  }

  #fresh(key: string): FailureRecord | undefined {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    if (this.#now() - record.last > this.#limits.failedLoginWindowMs) {
      this.#records.delete(key);
      return undefined;
    }
    return record;
  }
}

function keys(ip: string, user: string | undefined): string[] {
  return user === undefined ? [`ip:${ip}`] : [`ip:${ip}`, `user:${user}`];
}
