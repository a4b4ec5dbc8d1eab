/**
 * Audit events of the proxy: a local login's success or failure, and the end of each session
 * with what it did (account, local user, client address, upstream, bytes, result). They go to
 * the logger under `audit: true`. The types admit identities, reasons and counts only: never a
 * password, an app password, or a token (architecture.md R13).
 */
import type { Logger } from '../observability/logger.ts';

interface Base {
  /** Session id (random, per connection). */
  readonly session: string;
  readonly remoteAddress: string;
}

export interface ProxyLoginOkEvent extends Base {
  readonly event: 'proxy.login.ok';
  readonly mechanism: 'USER' | 'PLAIN';
  readonly localUser: string;
  readonly account: string;
  /** The app password's public id and label (which device). */
  readonly passwordId: string;
  readonly passwordLabel: string;
  /** `host:port` of the upstream. */
  readonly upstream: string;
}

export interface ProxyLoginFailEvent extends Base {
  readonly event: 'proxy.login.fail';
  readonly mechanism: 'USER' | 'PLAIN';
  /** The login name the client sent (capped), if any. */
  readonly localUser: string | undefined;
  readonly account: string | undefined;
  /**
   * `bad-password`, `unknown-user`, `malformed`, `reauth-required`, `upstream-auth`,
   * `upstream-temp`, `in-use`, `login-delay`, `account-limit`.
   */
  readonly reason: string;
  /** True when the client is not at fault (no throttling). */
  readonly temporary: boolean;
  /** The delay waited before answering (throttling), in ms. */
  readonly delayMs: number;
  readonly upstream: string | undefined;
}

export interface ProxyLogoutEvent extends Base {
  readonly event: 'proxy.logout';
  readonly localUser: string | undefined;
  readonly account: string | undefined;
  readonly upstream: string | undefined;
  /** `quit`, `dropped`, `idle`, `shutdown`, `limit`, `error`, `upstream-lost`. */
  readonly how: string;
  readonly commands: number;
  readonly retr: number;
  readonly top: number;
  readonly dele: number;
  /** Message octets sent to the client. */
  readonly bytesOut: number;
  readonly durationMs: number;
}

export type ProxyAuditEvent = ProxyLoginOkEvent | ProxyLoginFailEvent | ProxyLogoutEvent;

export interface ProxyAuditSink {
  emit(event: ProxyAuditEvent): void;
}

/** `info` for logins and logouts, `warn` for failures. */
export function createProxyAuditSink(logger: Logger): ProxyAuditSink {
  return {
    emit(event) {
      const fields = { audit: true, ...event };
      if (event.event === 'proxy.login.fail') logger.warn(fields, 'proxy login failed');
      else logger.info(fields, event.event === 'proxy.login.ok' ? 'proxy login' : 'proxy logout');
    },
  };
}
