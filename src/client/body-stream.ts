/**
 * The Readable a RETR/TOP body (RFC 1939 §5, §7) is delivered through. It is an ordinary
 * Readable (pipe, pipeline, 'data', read() all behave as usual); only the hand-off is lighter.
 *
 * Why: on a run of small messages, Node's per-stream machinery (a nextTick per push to announce
 * 'readable', another to read ahead, a copy when read() joins two buffered chunks, five
 * listeners and several ticks for the generic async iterator) cost more CPU than decoding the
 * messages. So the chunks the connection pushes wait in this stream's own queue; async iteration
 * takes them from there directly, and any other consumer pulls them into the Readable through
 * _read(). The semantics are Node's: chunks in order, the stream's error is thrown by the loop,
 * a destroy without error before the end throws ERR_STREAM_PREMATURE_CLOSE, a completed loop
 * emits 'end' and closes, and leaving the loop early (break, throw) destroys the stream.
 */
import { Readable } from 'node:stream';

function ignore(): void {}

/** The Readable's own buffered length (without this stream's queue). */
const ownReadableLength = Object.getOwnPropertyDescriptor(Readable.prototype, 'readableLength')!.get as (
  this: Readable,
) => number;

export interface BodyStreamHooks {
  /** The consumer wants more (backpressure released). */
  read(): void;
  /** The stream is being destroyed (by the consumer or with an error). */
  destroy(err: Error | null, callback: (err?: Error | null) => void): void;
}

export class BodyStream extends Readable {
  readonly #hooks: BodyStreamHooks;
  readonly #limit: number;
  /** Chunks pushed by the connection that no consumer has taken yet (from #head on). */
  #queue: Buffer[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** push(null) was called: no more data will come. */
  #ended = false;
  /** The Readable machinery asked for data (_read) while the queue was empty. */
  #pulling = false;
  #waiter: (() => void) | undefined;
  /** The async iterator returned done (or threw): later calls return done. */
  #iterationDone = false;

  constructor(hooks: BodyStreamHooks, highWaterMark: number) {
    super({ highWaterMark });
    this.#hooks = hooks;
    this.#limit = highWaterMark;
    // The body may fail before the caller holds the stream (a size mismatch in the first chunk):
    // keep that from crashing the process. pipeline(), async iteration, `errored` and the
    // caller's own 'error' listeners still see the error.
    this.on('error', ignore);
  }

  /**
   * The connection's side: queues a chunk (or the end, `null`). Returns false when the consumer
   * holds `highWaterMark` octets it has not taken: the connection pauses until `read` is called.
   */
  // biome-ignore lint/suspicious/noExplicitAny: Readable.push's own signature
  override push(chunk: any, encoding?: BufferEncoding): boolean {
    if (this.destroyed) return false;
    if (chunk === null) {
      this.#ended = true;
    } else {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Buffer);
      this.#queue.push(buffer);
      this.#queuedBytes += buffer.length;
    }
    if (this.#pulling) {
      this.#pulling = false;
      this._read();
    }
    this.#wake();
    return this.#queuedBytes < this.#limit;
  }

  static {
    // Octets buffered and not yet consumed: the Readable's own buffer and the queue. (@types/node
    // types readableLength as a property, so it cannot be declared as an accessor here.)
    Object.defineProperty(BodyStream.prototype, 'readableLength', {
      configurable: true,
      get(this: BodyStream): number {
        return ownReadableLength.call(this) + this.#queuedBytes;
      },
    });
  }

  /** A Readable consumer (pipe, 'data', read()) wants data: move queued chunks into it. */
  override _read(): void {
    let moved = false;
    while (this.#head < this.#queue.length) {
      moved = true;
      if (!super.push(this.#take())) break;
    }
    if (this.#head === this.#queue.length && this.#ended) {
      super.push(null);
      return;
    }
    if (!moved) this.#pulling = true;
    if (this.#queuedBytes < this.#limit) this.#hooks.read();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#wake();
    this.#hooks.destroy(err, callback);
  }

  /**
   * Async iteration without an async generator: one small iterator object per stream and one
   * settled promise per chunk (a generator allocated about 2 KB per message in frames, requests
   * and promises, and the garbage collector was the largest single cost of a small-message run).
   */
  override [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    const iterator: AsyncIterableIterator<Buffer> = {
      next: () => this.#next(),
      return: () => {
        // Leaving the loop early (break, throw): the connection discards the rest.
        if (!this.#iterationDone && !this.destroyed) this.destroy();
        this.#iterationDone = true;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  #next(): Promise<IteratorResult<Buffer>> {
    try {
      const result = this.#poll();
      if (result) return Promise.resolve(result);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const retry = () => {
        try {
          const result = this.#poll();
          if (result) resolve(result);
          else this.#waiter = retry;
        } catch (err) {
          reject(err);
        }
      };
      this.#waiter = retry;
    });
  }

  /** The next iteration result, or undefined to wait; throws the stream's error. */
  #poll(): IteratorResult<Buffer> | undefined {
    if (this.#iterationDone) return { value: undefined, done: true };
    if (this.destroyed) {
      this.#iterationDone = true;
      const err = this.errored;
      if (err) throw err;
      if (this.#ended && this.#head === this.#queue.length && ownReadableLength.call(this) === 0) {
        return { value: undefined, done: true };
      }
      throw Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    }
    // Chunks a Readable consumer already pulled in come first, then the queue.
    if (ownReadableLength.call(this) > 0) return { value: this.read() as Buffer, done: false };
    if (this.readableEncoding !== null) return this.#pollDecoded();
    if (this.#head < this.#queue.length) {
      const chunk = this.#take();
      if (this.#queuedBytes < this.#limit) this.#hooks.read();
      return { value: chunk, done: false };
    }
    if (this.#ended) {
      this.#iterationDone = true;
      // Like Node's iterator: 'end' is emitted, then autoDestroy closes the stream.
      super.push(null);
      this.read();
      return { value: undefined, done: true };
    }
    return undefined;
  }

  /**
   * After setEncoding(): every chunk goes through the Readable's string decoder (a character may
   * straddle two chunks), and the loop yields strings, as Node's own iterator does.
   */
  #pollDecoded(): IteratorResult<Buffer> | undefined {
    // Moves the queue into the Readable, or the end once the queue is empty.
    if (this.#head < this.#queue.length || this.#ended) this._read();
    if (ownReadableLength.call(this) > 0) return { value: this.read() as Buffer, done: false };
    if (this.#ended && this.#head === this.#queue.length) {
      this.#iterationDone = true;
      this.read(); // 'end', then autoDestroy closes the stream
      return { value: undefined, done: true };
    }
    return undefined;
  }

  #take(): Buffer {
    const chunk = this.#queue[this.#head]!;
    this.#queue[this.#head] = undefined as unknown as Buffer;
    this.#head++;
    this.#queuedBytes -= chunk.length;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    return chunk;
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter();
    }
  }
}
