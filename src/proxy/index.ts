/**
 * `popgate/proxy`: a local POP3 proxy that lets password-only clients reach OAuth2-only
 * providers (docs/proxy.md). The legacy client logs in with an app password (USER/PASS or SASL
 * PLAIN, over STLS/pop3s or plaintext on loopback); the proxy picks the account by login name,
 * logs in upstream with the account's access token (XOAUTH2 or OAUTHBEARER over verified TLS) and
 * relays the TRANSACTION commands through popgate's own client, streaming message bodies.
 *
 * Modules, one job each (architecture.md R1):
 * - options.ts        options checked at the door; listener URLs; non-loopback needs TLS
 * - proxy.ts          listeners (pop3:// + STLS, pop3s://), connection limits, reload, close
 * - session.ts        one local connection: AUTHORIZATION -> TRANSACTION (relay) -> end;
 *                     pipelined commands started upstream ahead (look-ahead), answered in order
 * - local-auth.ts     USER/PASS and AUTH PLAIN (inline, two-step), throttle, audit
 * - app-passwords.ts  the app-password file: add, list, revoke, verify (scrypt, timingSafeEqual)
 * - upstream.ts       connect + authenticate upstream; failures mapped to local answers
 * - relay.ts          STAT LIST UIDL RETR TOP DELE RSET NOOP QUIT through the client API
 * - capabilities.ts   the CAPA the proxy offers (never the upstream's)
 * - metrics.ts        popgate_proxy_* Prometheus metrics
 * - audit.ts          per-session audit events (never a password or token)
 * - self-signed.ts    a self-signed certificate when the operator gives none
 *
 * Reused, not copied: server/session-input.ts and server/answer-writer.ts (line input with
 * pipelining and backpressure; the one gate to the wire), server/tls.ts (TlsMaterial, reload),
 * server/limits.ts (LoginThrottle, ConnectionCounter), protocol/ (line reader, status lines with
 * CR/LF checks, dot-stuffing), internal/loopback.ts and internal/durable-fs.ts.
 */
export type { AppPasswordInfo, CreatedAppPassword } from './app-passwords.ts';
export { AppPasswordStore, normalizeAppPassword, SCRYPT_PARAMS } from './app-passwords.ts';
export type {
  ProxyAuditEvent,
  ProxyAuditSink,
  ProxyLoginFailEvent,
  ProxyLoginOkEvent,
  ProxyLogoutEvent,
} from './audit.ts';
export { createProxyAuditSink } from './audit.ts';
export type { ProxyMetrics } from './metrics.ts';
export { createProxyMetrics } from './metrics.ts';
export type {
  LocalPasswordCheck,
  Pop3ProxyOptions,
  ProxyAccount,
  ProxyLimits,
  UpstreamSettings,
} from './options.ts';
export { DEFAULT_PROXY_LIMITS } from './options.ts';
export type { Pop3Proxy, ProxyListenerAddress } from './proxy.ts';
export { createPop3Proxy } from './proxy.ts';
export type { SelfSignedFiles } from './self-signed.ts';
export { buildSelfSigned, ensureSelfSigned } from './self-signed.ts';
