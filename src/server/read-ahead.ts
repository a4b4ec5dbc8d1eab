/**
 * Read-ahead for sequential RETR: while message n is written, the next few messages are already
 * being read, so a store's slow round trips (the Maildir's thread-pool reads of large files, a
 * database's queries) overlap each other and the network writes. Answers stay strictly in order
 * (the session still runs one command at a time); prefetched bodies not asked for are dropped.
 * A body is a whole Buffer when the store offers `readWhole` and the message is small, else a
 * stream. Memory is bounded by `depth` small messages or first chunks.
 */
import type { Readable } from 'node:stream';
import type { MaildropSession } from '../store/types.ts';

/** Messages read ahead of the one being sent. */
export const READ_AHEAD_DEPTH = 8;

/** A message body as the store gave it: whole (small messages) or streamed. */
export type MessageBody = Buffer | Readable;

export class ReadAhead {
  readonly #maildrop: MaildropSession;
  readonly #depth: number;
  readonly #pending = new Map<number, Promise<MessageBody>>();

  constructor(maildrop: MaildropSession, depth = READ_AHEAD_DEPTH) {
    this.#maildrop = maildrop;
    this.#depth = depth;
  }

  /** The body of `index`: the prefetched one when there is one, else a fresh read. */
  take(index: number): Promise<MessageBody> {
    const hit = this.#pending.get(index);
    if (hit === undefined) {
      this.clear();
      return this.#read(index);
    }
    this.#pending.delete(index);
    for (const [i, body] of this.#pending) {
      if (i < index) {
        this.#pending.delete(i);
        discard(body);
      }
    }
    return hit;
  }

  /** Starts reading the messages from `from` on (existing, not marked deleted) in the background. */
  schedule(from: number, deleted: ReadonlySet<number>): void {
    const end = Math.min(from + this.#depth, this.#maildrop.messages.length);
    for (let i = from; i < end; i++) {
      if (this.#pending.has(i) || deleted.has(i)) continue;
      const body = this.#read(i);
      body.catch(() => {}); // surfaced when taken; ignored when discarded
      this.#pending.set(i, body);
    }
  }

  /** Drops every prefetched body (before UPDATE, release, or a non-sequential RETR). */
  clear(): void {
    for (const body of this.#pending.values()) discard(body);
    this.#pending.clear();
  }

  async #read(index: number): Promise<MessageBody> {
    const maildrop = this.#maildrop;
    if (maildrop.readWhole !== undefined) {
      const whole = await maildrop.readWhole(index);
      if (whole !== undefined) return whole;
    }
    return maildrop.read(index);
  }
}

function discard(body: Promise<MessageBody>): void {
  body.then(
    (b) => {
      if (!Buffer.isBuffer(b)) b.destroy();
    },
    () => {},
  );
}
