/**
 * popgate/server: a POP3 server that accepts OAuth2 bearer tokens (docs/server.md). What an
 * embedder needs: the server, its options and limits, the password backend hook and the listen
 * URL parser. The session machinery (registry, handlers, state machine) stays internal.
 */
export { DEFAULT_LIMITS, type ServerLimits } from './limits.ts';
export {
  type ListenerKind,
  type ListenSpec,
  type PasswordBackend,
  type Pop3ServerOptions,
  parseListenUrl,
  type ServerMechanism,
} from './options.ts';
export { createPop3Server, type ListenerAddress, type Pop3Server } from './server.ts';
export type { TlsSource } from './tls.ts';
