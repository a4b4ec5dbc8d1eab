/**
 * What the proxy's command handlers (local-auth.ts, relay.ts, commands.ts) see of a session:
 * its state and security, the one writer to the wire, and the two steps that change the state.
 * Kept apart from session.ts so handlers depend on an interface, not on the orchestrator.
 */
import type { Readable } from 'node:stream';
import type { Pop3Client } from '../client/pop3-client.ts';
import type { Logger } from '../observability/logger.ts';
import type { LoginThrottle } from '../server/limits.ts';
import type { ProxyAuditSink } from './audit.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { ProxyAccount, ResolvedProxyOptions } from './options.ts';

/** The proxy's two session states (RFC 1939 §3); UPDATE happens upstream at QUIT. */
export type ProxyState = 'AUTHORIZATION' | 'TRANSACTION';

/** Counts of one session, for the logout audit event. */
export interface ProxySessionStats {
  commands: number;
  retr: number;
  top: number;
  dele: number;
  bytesOut: number;
  failedLogins: number;
}

/** State shared by all sessions of one proxy. */
export interface ProxyShared {
  readonly options: ResolvedProxyOptions;
  readonly throttle: LoginThrottle;
  /** Takes an upstream slot for the account; false when it is at its ceiling. */
  acquireAccount(name: string): boolean;
  releaseAccount(name: string): void;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics | undefined;
  readonly audit: ProxyAuditSink | undefined;
}

export interface ProxyContext {
  readonly id: string;
  readonly remoteAddress: string;
  readonly state: ProxyState;
  readonly secure: boolean;
  /** Credentials may be received now: over TLS, or loopback listener and peer (when allowed). */
  readonly credentialsAllowed: boolean;
  readonly stlsAvailable: boolean;
  readonly closing: boolean;
  readonly shared: ProxyShared;
  readonly stats: ProxySessionStats;
  /** USER's name, waiting for PASS. */
  pendingUser: string | undefined;
  /** The upstream client, in TRANSACTION only. */
  readonly upstream: Pop3Client | undefined;
  /** True when the upstream connection is gone (closed, timed out, broke the protocol). */
  upstreamBroken(): boolean;
  /** An answer to the current command has begun (it may be half written). */
  answered(): boolean;
  ok(text?: string, code?: string): void;
  err(text: string, code?: string): void;
  multiline(first: string, lines: Iterable<string>): void;
  /** `+OK first`, then the body dot-stuffed and streamed, then the terminator. */
  message(first: string, body: Readable): Promise<number>;
  continuation(data: string): void;
  /** The next line (a SASL response); undefined when the connection ended. */
  readResponse(): Promise<string | undefined>;
  startTls(): Promise<void>;
  /** Enters TRANSACTION with a logged-in upstream for `account`. */
  enterTransaction(account: ProxyAccount, upstream: Pop3Client, localUser: string): void;
  /** Ends the session after the answers written so far. */
  end(how: 'quit' | 'limit' | 'upstream-lost' | 'error'): void;
}
