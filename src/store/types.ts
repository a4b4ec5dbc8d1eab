import type { Readable } from 'node:stream';
import type { StoreError } from '../errors.ts';

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
   *
   * Resolves once the deletion is committed, saying whether the store's bookkeeping finished too
   * ({@link CommitResult}). Rejects (StoreError) only when it is not committed: then no message
   * was deleted, and none will be by this call, so the server may answer `-ERR` (RFC 1939: "some
   * deleted messages not removed") truthfully.
   */
  commit(deleted: readonly number[]): Promise<CommitResult>;
  /** Releases the lock without changing anything (dropped connection, RSET then QUIT, ...). */
  release(): Promise<void>;
}

/**
 * How a committed UPDATE ended. `committed`: the marked messages are gone and everything is
 * recorded. `deferred`: the deletion is committed (the marked messages are gone, or recorded
 * durably so that the next open of the maildrop removes them before it lists anything), but a
 * later step of the store's own bookkeeping failed (`error`); the next open finishes it. Either
 * way the client's deletions happened, and POP3 reports them as done. Not committed is a
 * rejection of `commit`, never a result.
 */
export type CommitResult =
  | { readonly outcome: 'committed'; readonly deleted: number }
  | { readonly outcome: 'deferred'; readonly deleted: number; readonly error: StoreError };

/** Storage behind the POP3 server; every backend passes test/helpers/store-contract.ts. */
export interface MaildropStore {
  /** Opens and locks the user's maildrop. Throws StoreError ERR_STORE_LOCKED when in use. */
  open(user: string, options?: { signal?: AbortSignal }): Promise<MaildropSession>;
  /** Delivers one message durably (fsynced) before resolving; returns its UID. */
  deliver(user: string, message: Readable | Uint8Array): Promise<string>;
  close(): Promise<void>;
}
