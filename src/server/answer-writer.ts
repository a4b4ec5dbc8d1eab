/**
 * The one gate between a session and its socket (architecture.md R8). Every answer goes through here,
 * in order: status lines, SASL continuations, multi-line listings, RETR/TOP bodies. The text is
 * formatted by src/protocol, which refuses CR, LF and NUL, before anything is written, so a
 * refused answer leaves no half line. While a pipelined burst is queued the socket is corked and
 * answers are copied into one batch Buffer. Output is bounded the same way for every answer:
 * once the queued octets pass OUTPUT_HIGH_WATER the writer reports a stall (the session stops
 * reading and parsing input) and waits for 'drain' — between commands ({@link waitForRoom}) and
 * inside a message body. At STLS the plaintext queue is flushed and the socket swapped.
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { DotEncoder } from '../protocol/dot-stuffing.ts';
import { planFrame, writeFrame } from '../protocol/frame.ts';
import { formatMultiline } from '../protocol/multiline.ts';
import { formatContinuation, formatStatusLine } from '../protocol/response.ts';
import { BATCH_SIZE, CLOSE_GRACE_MS, OUTPUT_HIGH_WATER } from './limits.ts';

/** What the writer asks of its session. */
export interface WriterHooks {
  /** More pipelined input is queued: answers may wait in the batch. */
  hasQueuedInput(): boolean;
  /** The session is ending: stop copying a message body. */
  closing(): boolean;
  /** The queued output passed the high-water mark: stop reading and parsing input. */
  onStall(): void;
  /** The queue drained (the peer is reading, so it is not idle) or the session ends. */
  onRoom(): void;
}

export class AnswerWriter {
  readonly #hooks: WriterHooks;
  #socket: Socket;
  #corked = false;
  /** The output batch of a pipelined burst (see {@link BATCH_SIZE}); dropped when flushed. */
  #batch: Buffer | undefined;
  #batchLength = 0;
  #answered = false;
  /** Wakes a wait for room early (the session ends). */
  #wakeRoom: (() => void) | undefined;

  constructor(socket: Socket, hooks: WriterHooks) {
    this.#socket = socket;
    this.#hooks = hooks;
  }

  /** An answer to the current command has begun (it may be half written). */
  get answered(): boolean {
    return this.#answered;
  }

  /** Octets queued for the peer and not yet taken by the kernel: the socket's and the batch's. */
  get queued(): number {
    return this.#batchLength + this.#socket.writableLength;
  }

  /** The writer waits for the peer to read ('drain'); the session must not read input. */
  get stalled(): boolean {
    return this.#wakeRoom !== undefined;
  }

  /**
   * Undefined while the queued output is within {@link OUTPUT_HIGH_WATER}; past it, a promise
   * that resolves once the peer has read it all ('drain') or the session ends. The session asks
   * before each command, so every answer of every state is bounded, not only message bodies.
   */
  waitForRoom(): Promise<void> | undefined {
    return this.queued > OUTPUT_HIGH_WATER ? this.#drain() : undefined;
  }

  /** A new command starts: nothing answered yet. */
  beginCommand(): void {
    this.#answered = false;
  }

  // --- answers --------------------------------------------------------------------------------

  ok(text = '', code?: string): void {
    const line = formatStatusLine('ok', text, code);
    this.#answered = true;
    this.#write(line);
  }

  err(text: string, code?: string): void {
    const line = formatStatusLine('err', text, code);
    this.#answered = true;
    this.#write(line);
  }

  multiline(first: string, lines: Iterable<string>): void {
    const answer = formatMultiline(first, lines);
    this.#answered = true;
    this.#write(answer);
  }

  continuation(data: string): void {
    this.#write(formatContinuation(data));
  }

  /** `+OK first`, the message dot-stuffed, the terminator; resolves to the stuffed body's octets. */
  async message(first: string, body: Readable | Buffer): Promise<number> {
    if (!Buffer.isBuffer(body)) return this.#stream(first, body);
    const statusLine = formatStatusLine('ok', first);
    this.#answered = true;
    if (this.#hooks.closing()) return 0;
    const bytes = this.#writeFrame(statusLine, body);
    await this.waitForRoom();
    return bytes;
  }

  async #stream(first: string, body: Readable): Promise<number> {
    this.ok(first);
    const encoder = new DotEncoder();
    let bytes = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (this.#hooks.closing()) break;
        for (const part of encoder.push(chunk)) {
          bytes += part.length;
          this.#write(part);
        }
        const full = this.waitForRoom();
        if (full !== undefined) await full;
      }
    } finally {
      body.destroy();
    }
    for (const part of encoder.end()) this.#write(part);
    return bytes;
  }

  // --- the socket -----------------------------------------------------------------------------

  /** A command line was read: hold small writes until the burst's answers are queued. */
  cork(): void {
    if (this.#corked) return;
    this.#socket.cork();
    this.#corked = true;
  }

  /** Hands everything queued to the socket (before waiting for input, at STLS, at the end). */
  uncork(): void {
    this.#flushBatch();
    if (this.#corked) {
      this.#corked = false;
      this.#socket.uncork();
    }
  }

  /** STLS: flushes the plaintext queue to the old socket, then writes to `socket`. */
  replaceSocket(socket: Socket): void {
    this.uncork();
    this.#socket = socket;
  }

  /** Flushes and ends the socket: half-closed with a grace period, or destroyed at once. */
  end(graceful: boolean): void {
    this.#wakeRoom?.();
    this.uncork();
    const socket = this.#socket;
    if (graceful) {
      socket.end();
      // A peer that never reads must not hold the session open.
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    } else {
      socket.destroy();
    }
  }

  #write(data: string | Buffer): void {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return;
    const at = this.#reserve(typeof data === 'string' ? Buffer.byteLength(data) : data.length);
    if (at === undefined) socket.write(data);
    else if (typeof data === 'string') this.#batch!.write(data, at, 'utf8');
    else data.copy(this.#batch!, at);
  }

  /** Writes a whole message's answer (status line, stuffed body, terminator); returns body octets. */
  #writeFrame(statusLine: string, body: Buffer): number {
    const frame = planFrame(statusLine, body);
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return frame.bodyBytes;
    const at = this.#reserve(frame.length);
    if (at !== undefined) {
      writeFrame(this.#batch!, at, frame);
    } else {
      const out = Buffer.allocUnsafe(frame.length);
      writeFrame(out, 0, frame);
      socket.write(out);
    }
    return frame.bodyBytes;
  }

  /**
   * The offset in the batch where `length` octets go, or undefined (after flushing the batch,
   * so order is kept) when they go straight to the socket: nothing more is queued, or too big.
   */
  #reserve(length: number): number | undefined {
    const pipelined = this.#hooks.hasQueuedInput() && length <= BATCH_SIZE;
    if (!pipelined || this.#batchLength + length > BATCH_SIZE) this.#flushBatch();
    if (!pipelined) return undefined;
    this.#batch ??= Buffer.allocUnsafe(BATCH_SIZE);
    const at = this.#batchLength;
    this.#batchLength += length;
    return at;
  }

  #flushBatch(): void {
    if (this.#batchLength === 0) return;
    const out = this.#batch!.subarray(0, this.#batchLength);
    this.#batch = undefined;
    this.#batchLength = 0;
    const socket = this.#socket;
    if (!socket.destroyed && socket.writable) socket.write(out);
  }

  #drain(): Promise<void> {
    this.uncork();
    const socket = this.#socket;
    // 'drain' comes only after a write() that returned false, which a queue this long has had.
    if (socket.destroyed || !socket.writable || !socket.writableNeedDrain) return Promise.resolve();
    this.#hooks.onStall();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        this.#wakeRoom = undefined;
        this.#hooks.onRoom();
        resolve();
      };
      this.#wakeRoom = done;
      socket.on('drain', done);
      socket.on('close', done);
    });
  }
}
