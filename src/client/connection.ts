/**
 * The client's wire engine: one socket, one line reader, a queue of commands waiting to be
 * written and a queue of commands in flight whose answers are matched strictly in order
 * (RFC 2449 §6.6). Message bodies stream through a DotDecoder into a Readable with
 * backpressure (the socket pauses while the consumer is slow), so a message is never buffered
 * whole. Any protocol breach, timeout or drop is fatal: every pending call is rejected typed.
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { Pop3Error } from '../errors.ts';
import { type Logger, silentLogger } from '../observability/logger.ts';
import { DotDecoder } from '../protocol/dot-stuffing.ts';
import type { Pop3Limits, Pop3Timeouts } from '../protocol/limits.ts';
import { LineReader } from '../protocol/line-reader.ts';
import { MultilineCollector } from '../protocol/multiline.ts';
import { scrubSecrets } from '../protocol/redact.ts';
import { type Pop3Response, type Pop3StatusResponse, parseResponseLine } from '../protocol/response.ts';
import { BodyStream } from './body-stream.ts';
import { commandChannel, responseChannel } from './diagnostics.ts';
import { errorFromResponse } from './errors.ts';
import { AbortRegistry, DeadlineTimer } from './job-watch.ts';

export type JobKind = 'status' | 'raw' | 'multi' | 'body';

export interface JobRequest {
  /** Keyword for messages and errors (never carries arguments). */
  verb: string;
  /** Bytes to write; undefined for the greeting. */
  line: Buffer | undefined;
  /** Redacted form of the line for logs and diagnostics. */
  logLine: string;
  kind: JobKind;
  signal?: AbortSignal | undefined;
  /** Written only when nothing else is in flight, and nothing follows until it is answered. */
  barrier?: boolean;
  /** STLS: detach from the socket right after the +OK and fail closed on buffered bytes. */
  upgrade?: boolean;
  /** -ERR without a code means an authentication failure. */
  authenticating?: boolean;
  /** Body jobs: the size LIST announced, checked against the decoded octets. */
  expectedSize?: number | undefined;
}

export interface MultiResult {
  status: Pop3StatusResponse;
  lines: readonly string[];
}
export interface BodyResult {
  status: Pop3StatusResponse;
  stream: Readable;
}

/** How a queued command reports: an error, or undefined and its answer. */
export type JobCallback = (err: Error | undefined, value?: unknown) => void;

interface Job {
  readonly verb: string;
  readonly line: Buffer | undefined;
  readonly logLine: string;
  readonly kind: JobKind;
  readonly signal: AbortSignal | undefined;
  readonly barrier: boolean;
  readonly upgrade: boolean;
  readonly authenticating: boolean;
  expectedSize: number | undefined;
  /** Octets of answer this job reserves in the pipeline's byte window (LIST size, or 0). */
  windowBytes: number;
  /** Called once with the answer or the error. */
  readonly done: JobCallback;
  settled: boolean;
  abandoned: boolean;
  phase: 'waiting' | 'sent' | 'lines' | 'body';
  collector: MultilineCollector | undefined;
  status: Pop3StatusResponse | undefined;
  decoder: DotDecoder | undefined;
  stream: Readable | undefined;
}

export interface ConnectionContext {
  host: string;
  port: number;
  limits: Pop3Limits;
  timeouts: Pop3Timeouts;
  logger: Logger;
  sizeCheck: 'strict' | 'off';
}

const OCTETS = /^(\d{1,15})(?: |$)/;

export class Connection {
  readonly #ctx: ConnectionContext;
  /** False for the silent default logger: no log fields are built per command and answer. */
  readonly #logs: boolean;
  #socket: net.Socket | undefined;
  #reader: LineReader;
  readonly #waiting: Job[] = [];
  readonly #inflight: Job[] = [];
  /** Sum of `windowBytes` over #inflight: the answers the server has been asked for. */
  #inflightBytes = 0;
  #pipelining = false;
  #pumpScheduled = false;
  #pausedForBody = false;
  #detached = false;
  #closed: Pop3Error | undefined;
  #expectClose = false;
  readonly #aborts = new AbortRegistry<Job>((job) => this.#abortJob(job));
  readonly #deadline = new DeadlineTimer<Job>((job, ms) =>
    this.fail(new Pop3Error('ERR_POP3_TIMEOUT', `${job.verb} got no complete answer within ${ms} ms`)),
  );
  readonly #secrets = new Set<string>();
  readonly #onClose: (err: Pop3Error) => void;
  readonly #listeners: {
    readable: () => void;
    close: () => void;
    error: (e: Error) => void;
    timeout: () => void;
  };

  constructor(ctx: ConnectionContext, onClose: (err: Pop3Error) => void) {
    this.#ctx = ctx;
    this.#logs = ctx.logger !== silentLogger;
    this.#onClose = onClose;
    this.#reader = new LineReader({ maxLineLength: ctx.limits.maxLineLength });
    this.#listeners = {
      readable: () => this.#readSocket(),
      close: () => this.fail(new Pop3Error('ERR_POP3_CLOSED', 'the server closed the connection')),
      error: (err) =>
        this.fail(
          new Pop3Error(
            'ERR_POP3_CLOSED',
            `the connection failed (${(err as NodeJS.ErrnoException).code ?? 'socket error'})`,
            { cause: err },
          ),
        ),
      timeout: () => {
        if (this.#inflight.length > 0 && !this.#pausedForBody) {
          this.fail(
            new Pop3Error('ERR_POP3_TIMEOUT', `no data from the server for ${this.#ctx.timeouts.idle} ms`),
          );
        }
      },
    };
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Whether commands may be written before earlier answers arrive (CAPA PIPELINING). */
  set pipelining(on: boolean) {
    this.#pipelining = on;
  }

  /** Secrets to scrub from any server text during an exchange (defence in depth). */
  addSecret(secret: string): void {
    this.#secrets.add(secret);
  }
  clearSecrets(): void {
    this.#secrets.clear();
  }

  /** Takes a socket (the first one, or the TLS one after STLS) with a fresh line reader. */
  attach(socket: net.Socket): void {
    this.#socket = socket;
    this.#reader = new LineReader({ maxLineLength: this.#ctx.limits.maxLineLength });
    this.#detached = false;
    socket.setNoDelay(true);
    socket.setTimeout(this.#ctx.timeouts.idle);
    // Paused mode: one 'readable' per batch of TLS records, read as one buffer. In flowing mode
    // every 4 KiB record Dovecot writes was its own 'data' event, decoder call and consumer
    // wake-up; the one copy read() makes is cheaper than that.
    socket.on('readable', this.#listeners.readable);
    socket.on('close', this.#listeners.close);
    socket.on('error', this.#listeners.error);
    socket.on('timeout', this.#listeners.timeout);
    this.#readSocket();
  }

  #detach(): net.Socket | undefined {
    const socket = this.#socket;
    if (!socket) return undefined;
    socket.off('readable', this.#listeners.readable);
    socket.off('close', this.#listeners.close);
    socket.off('error', this.#listeners.error);
    socket.off('timeout', this.#listeners.timeout);
    socket.setTimeout(0);
    this.#detached = true;
    return socket;
  }

  /** After a +OK to STLS: hands the raw socket over for the TLS upgrade. */
  takeSocketForUpgrade(): net.Socket {
    const socket = this.#socket;
    if (!socket || !this.#detached) throw new Pop3Error('ERR_POP3_STATE', 'no STLS upgrade is pending');
    // Errors during the handshake are reported by the TLS socket; keep the raw one quiet.
    socket.on('error', () => {});
    return socket;
  }

  /** Queues a command; resolves with its answer, in order. */
  send(request: JobRequest): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.submit(request, (err, value) => (err ? reject(err) : resolve(value)));
    });
  }

  /**
   * Queues a command; `done` is called once with its answer or error, in order (a refusal
   * comes in a microtask). The callback form spares a batch of thousands of commands a promise
   * and two closures each.
   */
  submit(request: JobRequest, done: JobCallback): void {
    const refused = this.#closed
      ? this.#closed
      : request.signal?.aborted
        ? new Pop3Error('ERR_POP3_ABORTED', `${request.verb} was aborted`)
        : undefined;
    if (refused) {
      queueMicrotask(() => done(refused));
      return;
    }
    // Every field set here, in one order: one object shape for all jobs.
    const job: Job = {
      verb: request.verb,
      line: request.line,
      logLine: request.logLine,
      kind: request.kind,
      signal: request.signal,
      barrier: request.barrier === true,
      upgrade: request.upgrade === true,
      authenticating: request.authenticating === true,
      expectedSize: request.expectedSize,
      windowBytes: 0,
      done,
      settled: false,
      abandoned: false,
      phase: 'waiting',
      collector: undefined,
      status: undefined,
      decoder: undefined,
      stream: undefined,
    };
    this.#aborts.add(job);
    if (request.line === undefined) {
      // The greeting: nothing to write, the answer is already on its way.
      job.phase = 'sent';
      this.#inflight.push(job);
      this.#deadline.watch(job, this.#ctx.timeouts.greeting);
      this.#drainSafely();
    } else {
      this.#waiting.push(job);
      this.#schedulePump();
    }
  }

  /** Ends the connection after QUIT's +OK: the close that follows is expected. */
  end(): void {
    this.#expectClose = true;
    this.#socket?.end();
    this.fail(new Pop3Error('ERR_POP3_CLOSED', 'the connection was closed by the client'));
  }

  /** Fatal: destroys the socket, rejects everything pending with `err`. Idempotent. */
  fail(err: Pop3Error): void {
    if (this.#closed) return;
    this.#closed = err;
    const socket = this.#detach();
    if (!this.#expectClose) socket?.destroy();
    this.#deadline.stop();
    for (const job of [...this.#inflight, ...this.#waiting]) this.#settleError(job, err);
    this.#inflight.length = 0;
    this.#inflightBytes = 0;
    this.#waiting.length = 0;
    this.#aborts.clear();
    this.#secrets.clear();
    this.#onClose(err);
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    const socket = this.#socket;
    if (this.#closed || !socket || this.#detached) return;
    const depth = this.#pipelining ? this.#ctx.limits.maxPipelineDepth : 1;
    const budget = this.#ctx.limits.maxPipelineBytes;
    // Refill the pipe in batches: wait until a quarter of it (in commands and in expected answer
    // octets) is answered, then fill it up again in one write. Topping it up after every answer
    // cost one TLS record, one syscall and one wake-up of the server per message; waiting for
    // half of it to drain left the window a quarter emptier on average. Two commands may always
    // be in flight, so messages larger than the byte window still follow each other gaplessly.
    if (
      this.#inflight.length >= 2 &&
      (this.#inflight.length > depth - Math.max(1, depth >> 2) ||
        this.#inflightBytes > budget - Math.floor(budget / 4))
    ) {
      return;
    }
    // One write per batch: a corked socket still queues one write request per command and hands
    // them to writev; one concatenated buffer is one request (the commands are a few octets).
    const batch: Buffer[] = [];
    let batchBytes = 0;
    while (this.#waiting.length > 0) {
      const job = this.#waiting[0]!;
      if (job.settled) {
        this.#waiting.shift(); // aborted before it was written
        continue;
      }
      const last = this.#inflight[this.#inflight.length - 1];
      if (this.#inflight.length >= depth) break;
      if (this.#inflight.length >= 2 && this.#inflightBytes >= budget) break;
      if (last?.barrier || (job.barrier && this.#inflight.length > 0)) break;
      this.#waiting.shift();
      job.phase = 'sent';
      job.windowBytes = job.expectedSize ?? 0;
      this.#inflightBytes += job.windowBytes;
      this.#inflight.push(job);
      batch.push(job.line!);
      batchBytes += job.line!.length;
      if (this.#logs) this.#ctx.logger.debug({ command: job.logLine }, 'pop3 command');
      if (commandChannel.hasSubscribers) {
        commandChannel.publish({ host: this.#ctx.host, port: this.#ctx.port, command: job.logLine });
      }
      if (this.#inflight.length === 1) this.#deadline.watch(job, this.#ctx.timeouts.command);
    }
    if (batch.length === 1) socket.write(batch[0]!);
    else if (batch.length > 1) socket.write(Buffer.concat(batch, batchBytes));
  }

  #abortJob(job: Job): void {
    const err = new Pop3Error('ERR_POP3_ABORTED', `${job.verb} was aborted`);
    if (job.phase === 'waiting') {
      // Left in the queue and skipped by #pump: no O(n) search per aborted job.
      this.#settleError(job, err);
      return;
    }
    if (job.barrier || job.line === undefined) {
      // The session state after a half-done AUTH/STLS/greeting is unknown: close.
      this.fail(err);
      return;
    }
    // In flight: its answer still arrives and is discarded, keeping the pipe in sync.
    job.abandoned = true;
    this.#settleError(job, err);
    if (job.stream && !job.stream.destroyed) job.stream.destroy(err);
    this.#resumeBody();
  }

  #settle(job: Job, value: unknown): void {
    this.#deadline.unwatch(job);
    this.#aborts.delete(job);
    if (job.settled || job.abandoned) return;
    job.settled = true;
    job.done(undefined, value);
  }

  #settleError(job: Job, err: Error): void {
    this.#deadline.unwatch(job);
    this.#aborts.delete(job);
    if (job.stream && !job.stream.destroyed && !job.stream.readableEnded) job.stream.destroy(err);
    if (job.settled) return;
    job.settled = true;
    job.done(err);
  }

  /** Removes the finished head and starts the next one's timer. */
  #finishHead(): void {
    const done = this.#inflight.shift();
    if (done) {
      this.#deadline.unwatch(done);
      this.#inflightBytes -= done.windowBytes;
    }
    const next = this.#inflight[0];
    if (next && next.phase === 'sent' && next.line !== undefined)
      this.#deadline.watch(next, this.#ctx.timeouts.command);
    this.#schedulePump();
  }

  /** Reads what the socket holds, unless a slow body consumer has paused the connection. */
  #readSocket(): void {
    const socket = this.#socket;
    while (socket && !this.#pausedForBody && !this.#detached && !this.#closed) {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) return;
      this.#onData(chunk);
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.fail(err as Pop3Error);
      return;
    }
    this.#drainSafely();
  }

  #drainSafely(): void {
    try {
      this.#drain();
    } catch (err) {
      this.fail(
        err instanceof Pop3Error ? err : new Pop3Error('ERR_POP3_PROTOCOL', 'internal error', { cause: err }),
      );
    }
  }

  #drain(): void {
    while (!this.#closed && !this.#detached) {
      const head = this.#inflight[0];
      if (head?.phase === 'body') {
        if (this.#pausedForBody) return;
        const data = this.#reader.takeBuffered();
        if (data.length === 0) return;
        if (!this.#feedBody(head, data)) return;
        continue;
      }
      const line = this.#reader.readLine();
      if (line === undefined) return;
      if (!head) {
        throw new Pop3Error('ERR_POP3_PROTOCOL', 'the server sent data no command asked for');
      }
      this.#onLine(head, line);
    }
  }

  #publishResponse(response: Pop3Response): void {
    // The text was scrubbed in #onLine already.
    const text = response.kind === 'continue' ? '' : response.text;
    const code = response.kind === 'continue' ? undefined : response.code;
    if (this.#logs) this.#ctx.logger.debug({ status: response.kind, code, text }, 'pop3 response');
    if (responseChannel.hasSubscribers) {
      responseChannel.publish({
        host: this.#ctx.host,
        port: this.#ctx.port,
        status: response.kind,
        code,
        text,
      });
    }
  }

  #onLine(job: Job, line: Buffer): void {
    if (job.phase === 'lines') {
      if (job.collector!.push(line)) {
        const result: MultiResult = { status: job.status!, lines: job.collector!.lines };
        this.#settle(job, result);
        this.#finishHead();
      }
      return;
    }
    let response = parseResponseLine(line, {
      allowContinuation: job.kind === 'raw',
      maxText: this.#ctx.limits.maxLoggedText,
    });
    if (response.kind !== 'continue' && this.#secrets.size > 0) {
      response = { ...response, text: scrubSecrets(response.text, [...this.#secrets]) };
    }
    this.#publishResponse(response);
    if (job.kind === 'raw') {
      this.#settle(job, response);
      this.#finishHead();
      return;
    }
    if (response.kind === 'err') {
      this.#settleError(
        job,
        errorFromResponse(job.verb, response, { authenticating: job.authenticating === true }),
      );
      this.#finishHead();
      return;
    }
    if (response.kind !== 'ok') throw new Pop3Error('ERR_POP3_PROTOCOL', 'unexpected continuation');
    if (job.kind === 'status') {
      if (job.upgrade) {
        // RFC 2595 §4 / STYLE.md #10: nothing may follow +OK before the handshake.
        this.#detach();
        if (this.#reader.buffered > 0 || (this.#socket?.readableLength ?? 0) > 0) {
          this.#detached = false;
          this.fail(
            new Pop3Error(
              'ERR_POP3_STLS_INJECTION',
              'bytes followed +OK to STLS before the TLS handshake; the connection was closed (possible attack)',
            ),
          );
          return;
        }
      }
      this.#settle(job, response);
      this.#finishHead();
      return;
    }
    if (job.kind === 'multi') {
      job.phase = 'lines';
      job.status = response;
      job.collector = new MultilineCollector(this.#ctx.limits.maxMultilineResponse);
      return;
    }
    // Body: hand a stream to the caller now; bytes flow as they arrive.
    if (job.expectedSize === undefined) {
      const m = OCTETS.exec(response.text);
      if (m) job.expectedSize = Number(m[1]);
    }
    job.phase = 'body';
    // From here the socket's idle timeout guards the body (it may take long, with progress).
    this.#deadline.unwatch(job);
    job.decoder = new DotDecoder(this.#ctx.limits.maxMessageSize);
    job.stream = new BodyStream(
      {
        read: () => this.#resumeBody(),
        destroy: (err, cb) => {
          // The consumer gave up: discard the rest of this body, keep the connection.
          if (!job.decoder!.done) job.abandoned = true;
          this.#resumeBody();
          cb(err);
        },
      },
      256 * 1024,
    );
    // BodyStream keeps an error from crashing the process when the body fails before the caller
    // holds the stream (a size mismatch in the first chunk).
    this.#settle(job, { status: response, stream: job.stream } satisfies BodyResult);
  }

  /** Feeds body bytes; returns false when the drain loop must stop (paused or waiting). */
  #feedBody(job: Job, data: Buffer): boolean {
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
        stream.destroy(this.#sizeError(job, decoder.size, expected, 'more'));
      }
    }
    if (result.done) {
      if (!job.abandoned && !stream.destroyed) {
        const mismatch = this.#checkSize(job, decoder.size);
        if (mismatch) stream.destroy(mismatch);
        else stream.push(null);
      }
      this.#finishHead();
      this.#reader.push(result.rest);
      return true;
    }
    if (!wantMore && !job.abandoned && !stream.destroyed) {
      this.#pausedForBody = true;
      return false;
    }
    return false;
  }

  #checkSize(job: Job, size: number): Pop3Error | undefined {
    const expected = job.expectedSize;
    if (this.#ctx.sizeCheck === 'off' || expected === undefined || size === expected) return undefined;
    // A message without a final line end gains the CRLF that precedes the terminator.
    if (size === expected + 2) return undefined;
    return this.#sizeError(job, size, expected, size > expected ? 'more' : 'fewer');
  }

  #sizeError(job: Job, size: number, expected: number, which: string): Pop3Error {
    return new Pop3Error(
      'ERR_POP3_SIZE_MISMATCH',
      `${job.verb} delivered ${which} octets (${size}${which === 'more' ? '+' : ''}) than LIST announced (${expected}); the message was not accepted`,
    );
  }

  #resumeBody(): void {
    if (!this.#pausedForBody || this.#closed) return;
    this.#pausedForBody = false;
    // Bytes buffered before the pause are still in the reader, and more wait in the socket.
    queueMicrotask(() => {
      this.#drainSafely();
      this.#readSocket();
    });
  }
}
