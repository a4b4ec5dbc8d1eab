/**
 * What the login and UPDATE steps (session-auth.ts) need of a session: who it is, its counters,
 * the server's shared state, and a way to answer. An interface rather than the session class,
 * so session-auth.ts does not import session.ts (which calls it).
 */
import type { SessionStats } from './context.ts';
import type { ServerShared } from './shared.ts';

export interface LoginHost {
  readonly id: string;
  readonly remoteAddress: string;
  readonly stats: SessionStats;
  readonly shared: ServerShared;
  /** The session is ending (the client went away): a maildrop just opened must be released. */
  readonly closing: boolean;
  /** `+OK [CODE] text`. */
  ok(text?: string, code?: string): void;
  /** `-ERR [CODE] text`. */
  err(text: string, code?: string): void;
}
