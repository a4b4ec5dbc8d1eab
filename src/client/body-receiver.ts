/**
 * The RETR/TOP body path of the connection (RFC 1939 §5, §7): after the +OK, octets go through
 * a DotDecoder into a BodyStream the caller already holds, with backpressure (a slow consumer
 * pauses the connection, so a message is never buffered whole), and the decoded size is checked
 * against what LIST announced. Apart from the connection because it is the one part that deals
 * in octets rather than lines. One instance per connection; each body's state lives on its job.
 */
import type { Readable } from 'node:stream';
import { Pop3Error } from '../errors.ts';
import { DotDecoder } from '../protocol/dot-stuffing.ts';
import type { Pop3StatusResponse } from '../protocol/response.ts';
import { BodyStream } from './body-stream.ts';
import type { ConnectionContext, Job } from './job.ts';

const OCTETS = /^(\d{1,15})(?: |$)/;

export class BodyReceiver {
  /** The consumer of the current body holds a full buffer: the connection reads nothing more. */
  paused = false;
  readonly #ctx: ConnectionContext;
  readonly #isClosed: () => boolean;
  /** Drains what the line reader holds, then reads the socket again. */
  readonly #continue: () => void;

  constructor(ctx: ConnectionContext, isClosed: () => boolean, continueReading: () => void) {
    this.#ctx = ctx;
    this.#isClosed = isClosed;
    this.#continue = continueReading;
  }

  /** After +OK to RETR/TOP: turns `job` into a body and returns the stream for the caller. */
  open(job: Job, response: Pop3StatusResponse): Readable {
    if (job.expectedSize === undefined) {
      const m = OCTETS.exec(response.text);
      if (m) job.expectedSize = Number(m[1]);
    }
    job.phase = 'body';
    job.decoder = new DotDecoder(this.#ctx.limits.maxMessageSize);
    job.stream = new BodyStream(
      {
        read: () => this.resume(),
        destroy: (err, cb) => {
          // The consumer gave up: discard the rest of this body, keep the connection.
          if (!job.decoder!.done) job.abandoned = true;
          this.resume();
          cb(err);
        },
      },
      256 * 1024,
    );
    return job.stream;
  }

  /**
   * Feeds body bytes. Returns the bytes after the body's terminator once it ended (the caller
   * finishes the job and reads on), or undefined when the drain loop must stop (paused or
   * waiting for more).
   */
  feed(job: Job, data: Buffer): Buffer | undefined {
    const decoder = job.decoder!;
    const stream = job.stream!;
    let result: ReturnType<DotDecoder['push']>;
    try {
      result = decoder.push(data);
    } catch (err) {
      // Over maxMessageSize: we cannot find the end without reading it all; close.
      if (!stream.destroyed) stream.destroy(err as Error);
      throw err;
    }
    let wantMore = true;
    if (!job.abandoned && !stream.destroyed) {
      for (const part of result.body) wantMore = stream.push(part) && wantMore;
      const expected = job.expectedSize;
      if (this.#ctx.sizeCheck === 'strict' && expected !== undefined && decoder.size > expected + 2) {
        job.abandoned = true;
        stream.destroy(sizeError(job, decoder.size, expected, 'more'));
      }
    }
    if (result.done) {
      if (!job.abandoned && !stream.destroyed) {
        const mismatch = this.#checkSize(job, decoder.size);
        if (mismatch) stream.destroy(mismatch);
        else stream.push(null);
      }
      return result.rest;
    }
    if (!wantMore && !job.abandoned && !stream.destroyed) this.paused = true;
    return undefined;
  }

  /** The consumer wants more (or gave up, or the job was aborted): lifts a pause. */
  resume(): void {
    if (!this.paused || this.#isClosed()) return;
    this.paused = false;
    // Bytes buffered before the pause are still in the reader, and more wait in the socket.
    queueMicrotask(this.#continue);
  }

  #checkSize(job: Job, size: number): Pop3Error | undefined {
    const expected = job.expectedSize;
    if (this.#ctx.sizeCheck === 'off' || expected === undefined || size === expected) return undefined;
    // A message without a final line end gains the CRLF that precedes the terminator.
    if (size === expected + 2) return undefined;
    return sizeError(job, size, expected, size > expected ? 'more' : 'fewer');
  }
}

function sizeError(job: Job, size: number, expected: number, which: string): Pop3Error {
  return new Pop3Error(
    'ERR_POP3_SIZE_MISMATCH',
    `${job.verb} delivered ${which} octets (${size}${which === 'more' ? '+' : ''}) than LIST announced (${expected}); the message was not accepted`,
  );
}
