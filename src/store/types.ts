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
  /**
   * The message bytes with CRLF line endings, not dot-stuffed, exactly `messages[index].size`
   * octets (RFC 1939 section 7, RETR). `index` is 0-based. Rejects with StoreError
   * ERR_STORE_NO_SUCH_MESSAGE for an index outside the session or a message another program
   * removed meanwhile.
   */
  read(index: number, options?: { signal?: AbortSignal }): Promise<Readable>;
  /**
   * Optional fast path for small messages: the same bytes `read` would stream, as one Buffer,
   * or `undefined` when the message is too large for the store to hold in memory (the caller
   * then uses `read`). Rejects like `read`. A store that cannot do better than `read` leaves it
   * out; the server then always streams.
   */
  readWhole?(index: number): Promise<Buffer | undefined>;
  /**
   * The UPDATE state (RFC 1939 section 6): atomically removes the given 0-based messages, then
   * releases the lock (also when it fails). A crash part-way never loses an undeleted message and
   * never brings a deleted one back (docs/store.md, "Deletion and crash semantics").
   */
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
