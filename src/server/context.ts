/**
 * What a command handler sees of its session. Handlers never touch the socket: they answer
 * through this interface, which is the one path to the wire (responses are formatted and
 * checked in one place, in order).
 */
import type { Readable } from 'node:stream';
import type { ValidatedToken } from '../auth/types.ts';
import type { MaildropSession } from '../store/types.ts';
import type { ResolvedServerOptions } from './options.ts';
import type { ReadAhead } from './read-ahead.ts';
import type { SessionState } from './state.ts';

/** The TRANSACTION state's data: the locked maildrop and the marks made on it. */
export interface Transaction {
  readonly user: string;
  readonly maildrop: MaildropSession;
  /** The token that logged in (absent for a password login). */
  readonly token: ValidatedToken | undefined;
  /** May this session DELE (the token's delete right; true for password logins). */
  readonly canDelete: boolean;
  /** 0-based indexes marked deleted; RSET clears, UPDATE commits. Nothing renumbers. */
  readonly deleted: Set<number>;
  /** Sequential RETR read-ahead. */
  readonly readAhead: ReadAhead;
}

/** Per-session counters for the logout audit event. */
export interface SessionStats {
  commands: number;
  retr: number;
  top: number;
  dele: number;
  bytesOut: number;
  failedLogins: number;
}

/** Who is logging in and how, for the login step shared by AUTH and PASS. */
export interface LoginRequest {
  readonly user: string;
  readonly mechanism: string;
  readonly token: ValidatedToken | undefined;
}

/** A failed login, as AUTH and PASS report it. */
export interface LoginFailure {
  /** The user the client claimed, if any (capped before it reaches a log). */
  readonly user: string | undefined;
  /** A stable error code: `ERR_AUTH_*`, `ERR_SASL_*`, `ERR_STORE_*`, ... */
  readonly reason: string;
  readonly mechanism: string;
  /** An outage of the identity provider or store: not the client's fault, no penalty. */
  readonly temporary: boolean;
  readonly issuer?: string | undefined;
}

export interface CommandContext {
  readonly id: string;
  readonly state: SessionState;
  /** TLS is up on this connection (implicit or after STLS). */
  readonly secure: boolean;
  /**
   * SASL and USER may be used: TLS is up, or the peer and the listener are both loopback and
   * plaintext is explicitly allowed (plaintext-policy.ts).
   */
  readonly credentialsAllowed: boolean;
  /** STLS can be offered: TLS material exists and TLS is not up yet. */
  readonly stlsAvailable: boolean;
  readonly remoteAddress: string;
  readonly options: ResolvedServerOptions;
  readonly transaction: Transaction | undefined;
  readonly stats: SessionStats;
  /** USER name given in this session, awaiting PASS. */
  pendingUser: string | undefined;

  /** `+OK [CODE] text`. */
  ok(text?: string, code?: string): void;
  /** `-ERR [CODE] text`. */
  err(text: string, code?: string): void;
  /** `+OK first`, the lines (dot-stuffed), then the terminating `.`. */
  multiline(first: string, lines: Iterable<string>): void;
  /**
   * `+OK first`, the message dot-stuffed, then the terminator; resolves when it may go on (the
   * answer is queued and the output buffer is under its bound). A Buffer is the whole message
   * (one write); a stream is copied with backpressure.
   */
  message(first: string, body: Readable | Buffer): Promise<number>;
  /** A SASL continuation `+ data` (data is base64 or empty). */
  continuation(data: string): void;
  /** The next client line under the SASL response cap; undefined when the connection ended. */
  readResponse(): Promise<string | undefined>;
  /** Upgrades to TLS after `+OK` was written; buffered plaintext is dropped. */
  startTls(): Promise<void>;
  /**
   * Records a failed login (audit, metrics) and, unless it is an outage, waits the growing
   * per-IP/per-user delay; the session closes after too many failures.
   */
  loginFailed(failure: LoginFailure): Promise<void>;
  /**
   * Opens the maildrop and enters TRANSACTION, answering `+OK` or the right `-ERR`
   * (`[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`).
   */
  login(request: LoginRequest): Promise<boolean>;
  /** Ends the session: in TRANSACTION goes through UPDATE; answers and closes. */
  quit(): Promise<void>;
}
