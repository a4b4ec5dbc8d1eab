import type { Readable } from 'node:stream';

/** One message of a maildrop as the POP3 server numbers it for a session. */
export interface MaildropMessage {
  /** Stable unique id (UIDL), 1-70 printable ASCII characters 0x21-0x7E, never reused. */
  readonly uid: string;
  /** Exact size in octets with CRLF line endings, before dot-stuffing (what LIST reports). */
  readonly size: number;
}

/**
 * A locked, opened maildrop. Message numbers are indexes into `messages` plus one and are fixed
 * for the session; nothing renumbers. Deletions happen only through `commit` (the UPDATE state).
 */
export interface MaildropSession {
  readonly user: string;
  readonly messages: readonly MaildropMessage[];
  /** The message bytes with CRLF line endings, not dot-stuffed. `index` is 0-based. */
  read(index: number, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** Atomically removes the given 0-based messages, then releases the lock. */
  commit(deleted: readonly number[]): Promise<void>;
  /** Releases the lock without changing anything (dropped connection, RSET then QUIT, ...). */
  release(): Promise<void>;
}

/** Storage behind the POP3 server; every backend passes test/helpers/store-contract.ts. */
export interface MaildropStore {
  /** Opens and locks the user's maildrop. Throws StoreError ERR_STORE_LOCKED when in use. */
  open(user: string, options?: { signal?: AbortSignal }): Promise<MaildropSession>;
  /** Delivers one message durably (fsynced) before resolving; returns its UID. */
  deliver(user: string, message: Readable | Uint8Array): Promise<string>;
  close(): Promise<void>;
}
