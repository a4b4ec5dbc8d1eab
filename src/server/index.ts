/** popgate/server: a POP3 server that accepts OAuth2 bearer tokens. */
export { capabilities } from './capabilities.ts';
export { COMMAND_REGISTRY } from './commands/index.ts';
export type { CommandContext, LoginFailure, LoginRequest, SessionStats, Transaction } from './context.ts';
export { ConnectionCounter, DEFAULT_LIMITS, LoginThrottle, type ServerLimits } from './limits.ts';
export {
  isLoopbackHost,
  type ListenerKind,
  type ListenSpec,
  type PasswordBackend,
  type Pop3ServerOptions,
  parseListenUrl,
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerMechanism,
} from './options.ts';
export { type CommandHandler, createRegistry, type MultilineKind, type Pop3Verb } from './registry.ts';
export { createPop3Server, type ListenerAddress, type Pop3Server } from './server.ts';
export { nextState, type SessionEvent, type SessionState } from './state.ts';
export { TlsMaterial, type TlsSource } from './tls.ts';
