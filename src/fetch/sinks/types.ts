/**
 * The destination a fetched message is delivered to. Delivery is two steps so that the UIDL
 * state can announce a delivery (an intent) before it becomes visible, and confirm it after:
 *
 * 1. `stage(message)` consumes the message stream into a private, durable place (Maildir: a
 *    file in `tmp/`, fsynced; mbox and command: a spool file). Nothing is visible yet.
 * 2. `publish(batch, announce)` makes staged messages visible in their final place. It calls
 *    `announce(intents)` (which fsyncs the state journal) before the first byte of those messages
 *    becomes visible, and returns once they are durable (fsynced file and directory).
 *
 * After a crash, `recover(key)` tells whether an announced delivery reached the destination.
 */
import type { Readable } from 'node:stream';
import type { FetchError } from '../../errors.ts';

export interface MessageInfo {
  /** Server's unique id (UIDL) of the message, or popgate's synthetic id on servers without UIDL. */
  readonly uidl: string;
  /** Size announced by LIST (octets on the wire). */
  readonly size: number;
  /** Account name, passed to delivery commands. */
  readonly account: string;
}

export interface Staged {
  readonly info: MessageInfo;
  /** Octets that will be written to the destination. */
  readonly bytes: number;
  /** The Message-ID header, when the message has one (for the second dedupe guard). */
  readonly messageId: string | undefined;
}

export interface Intent {
  readonly uidl: string;
  /** A JSON-serialisable locator the sink can check after a crash. */
  readonly key: unknown;
}

export type PublishOutcome = { readonly ok: true } | { readonly ok: false; readonly error: FetchError };

export type RecoveryResult = 'delivered' | 'absent' | 'unknown';

export interface Sink {
  readonly kind: 'maildir' | 'mbox' | 'command';
  /** Human description of where mail goes (shown in progress and doctor). */
  readonly description: string;
  /** Makes sure the destination exists; removes spool/tmp leftovers of dead popgate processes. */
  open(): Promise<void>;
  /** Consumes `message` (CRLF wire form, already dot-unstuffed) into a durable private place. */
  stage(message: Readable, info: MessageInfo): Promise<Staged>;
  /**
   * Publishes staged messages in order. Calls `announce` before any of them becomes visible.
   * Returns one outcome per staged message; an outcome `ok` means durable in its final place.
   * Rejects only when nothing after the failure point can be trusted (e.g. disk full).
   */
  publish(
    batch: readonly Staged[],
    announce: (intents: readonly Intent[]) => Promise<void>,
  ): Promise<PublishOutcome[]>;
  /** Releases a staged message that will not be published. */
  discard(staged: Staged): Promise<void>;
  /**
   * After a crash: did the announced delivery `key` reach the destination? `unknown` when the
   * destination cannot be inspected (a delivery command); the caller then delivers again.
   */
  recover(key: unknown): Promise<RecoveryResult>;
  close(): Promise<void>;
}
