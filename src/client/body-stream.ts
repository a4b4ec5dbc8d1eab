/**
 * The Readable a RETR/TOP body (RFC 1939 §5, §7) is delivered through. It is an ordinary
 * Readable (pipe, pipeline, 'data', read() all behave as usual); only async iteration is
 * lighter. Node's generic iterator attaches a 'readable' listener and an end-of-stream watcher
 * (five listeners, several nextTick hops) to every stream, which on a run of small messages cost
 * about as much CPU as decoding them. This one reads the buffer directly and waits on a single
 * callback that push() and destroy() fire. The semantics are Node's: chunks in order, the
 * stream's error is thrown, a destroy without error before the end throws
 * ERR_STREAM_PREMATURE_CLOSE, and leaving the loop early (break, throw) destroys the stream.
 */
import { Readable } from 'node:stream';

function ignore(): void {}

export interface BodyStreamHooks {
  /** The consumer wants more (backpressure released). */
  read(): void;
  /** The stream is being destroyed (by the consumer or with an error). */
  destroy(err: Error | null, callback: (err?: Error | null) => void): void;
}

export class BodyStream extends Readable {
  readonly #hooks: BodyStreamHooks;
  /** push(null) was called: no more data will come. */
  #ended = false;
  #waiter: (() => void) | undefined;

  constructor(hooks: BodyStreamHooks, highWaterMark: number) {
    super({ highWaterMark });
    this.#hooks = hooks;
    // The body may fail before the caller holds the stream (a size mismatch in the first chunk):
    // keep that from crashing the process. pipeline(), async iteration, `errored` and the
    // caller's own 'error' listeners still see the error.
    this.on('error', ignore);
  }

  override _read(): void {
    this.#hooks.read();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#wake();
    this.#hooks.destroy(err, callback);
  }

  // biome-ignore lint/suspicious/noExplicitAny: Readable.push's own signature
  override push(chunk: any, encoding?: BufferEncoding): boolean {
    if (chunk === null && !this.destroyed) this.#ended = true;
    const more = super.push(chunk, encoding);
    this.#wake();
    return more;
  }

  override async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, undefined, undefined> {
    let finished = false;
    try {
      for (;;) {
        if (!this.destroyed) {
          const chunk = this.read() as Buffer | null;
          if (chunk !== null) {
            yield chunk;
            continue;
          }
          if (this.#ended) {
            finished = true;
            return undefined;
          }
        } else {
          const err = this.errored;
          if (err) throw err;
          if (this.#ended && this.readableLength === 0) {
            finished = true;
            return undefined;
          }
          throw Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
        }
        await new Promise<void>((resolve) => {
          this.#waiter = resolve;
        });
      }
    } finally {
      if (!finished && !this.destroyed) this.destroy();
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter();
    }
  }
}
