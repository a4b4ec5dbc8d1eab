/**
 * Read-ahead for sequential RETR: while message n is written, the next few messages are already
 * being opened and read, so the store's file-system round trips (open, stat, read, close on the
 * thread pool) overlap each other and the network writes. Answers stay strictly in order (the
 * dispatcher still runs one command at a time); prefetched streams not asked for are destroyed.
 * Memory is bounded by `depth` messages' first chunk (small messages are one chunk).
 */
import type { Readable } from 'node:stream';
import type { MaildropSession } from '../store/types.ts';

/** Messages opened ahead of the one being sent. */
export const READ_AHEAD_DEPTH = 8;

export class ReadAhead {
  readonly #maildrop: MaildropSession;
  readonly #depth: number;
  readonly #pending = new Map<number, Promise<Readable>>();

  constructor(maildrop: MaildropSession, depth = READ_AHEAD_DEPTH) {
    this.#maildrop = maildrop;
    this.#depth = depth;
  }

  /** The stream for `index`: the prefetched one when there is one, else a fresh read. */
  take(index: number): Promise<Readable> {
    const hit = this.#pending.get(index);
    if (hit === undefined) {
      this.clear();
      return this.#maildrop.read(index);
    }
    this.#pending.delete(index);
    for (const [i, stream] of this.#pending) {
      if (i < index) {
        this.#pending.delete(i);
        discard(stream);
      }
    }
    return hit;
  }

  /** Starts reading the messages from `from` on (existing, not marked deleted) in the background. */
  schedule(from: number, deleted: ReadonlySet<number>): void {
    const end = Math.min(from + this.#depth, this.#maildrop.messages.length);
    for (let i = from; i < end; i++) {
      if (this.#pending.has(i) || deleted.has(i)) continue;
      const stream = this.#maildrop.read(i);
      stream.catch(() => {}); // surfaced when taken; ignored when discarded
      this.#pending.set(i, stream);
    }
  }

  /** Drops every prefetched stream (before UPDATE, release, or a non-sequential RETR). */
  clear(): void {
    for (const stream of this.#pending.values()) discard(stream);
    this.#pending.clear();
  }
}

function discard(stream: Promise<Readable>): void {
  stream.then(
    (s) => s.destroy(),
    () => {},
  );
}
