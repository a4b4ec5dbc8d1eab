/**
 * What the sync needs from an authenticated POP3 session (TRANSACTION state). `pop3-session.ts`
 * adapts popgate's Pop3Client to it; tests may script one. Message numbers are those of RFC 1939
 * section 5: fixed for the session.
 */
import type { Readable } from 'node:stream';

export interface ServerMessage {
  /** Message number in this session. */
  readonly number: number;
  /** Size from LIST (octets). */
  readonly size: number;
  /**
   * Unique id: the server's UIDL, or on servers without UIDL a synthetic `mid:` id derived from
   * the Message-ID and size (the second dedupe guard).
   */
  readonly uidl: string;
}

export interface RetrievedMessage {
  readonly number: number;
  /** The message, dot-unstuffed, CRLF line endings; must be consumed before the next one. */
  readonly stream: Readable;
}

export interface MailboxSession {
  /** Every message on the server with its size and unique id (UIDL + LIST, pipelined). */
  listing(): Promise<readonly ServerMessage[]>;
  /**
   * Retrieves the messages in order, pipelined when the server allows it. Breaking out of the
   * loop stops sending further RETRs; answers already requested are drained by the session.
   */
  retrieveAll(numbers: readonly number[]): AsyncIterable<RetrievedMessage>;
  /** Marks messages deleted (DELE); they go only when {@link quit} succeeds. */
  delete(numbers: readonly number[]): Promise<void>;
  /** QUIT: the server commits deletions (UPDATE state). Resolves only on `+OK`. */
  quit(): Promise<void>;
  /** Drops the connection without QUIT: the server deletes nothing. */
  destroy(): void;
}
