/**
 * The client's wire engine: one socket, one line reader, a queue of commands waiting to be
 * written and a queue of commands in flight whose answers are matched strictly in order
 * (RFC 2449 §6.6). Message bodies stream through a DotDecoder into a Readable with
 * backpressure (the socket pauses while the consumer is slow), so a message is never buffered
 * whole. Any protocol breach, timeout or drop is fatal: every pending call is rejected typed.
 * The write side (command-writer.ts) and the body path (body-receiver.ts) are helpers it owns.
 * It stays one file a little over 400 lines: the two queues and the socket state change together,
 * and splitting them would spread one state machine over several modules.
 */
import type net from 'node:net';
import { Pop3Error } from '../errors.ts';
import { silentLogger } from '../observability/logger.ts';
import { LineReader } from '../protocol/line-reader.ts';
import { MultilineCollector } from '../protocol/multiline.ts';
import { scrubSecrets } from '../protocol/redact.ts';
import { type Pop3Response, parseResponseLine } from '../protocol/response.ts';
import { BodyReceiver } from './body-receiver.ts';
import { CommandWriter } from './command-writer.ts';
import { responseChannel } from './diagnostics.ts';
import { errorFromResponse } from './errors.ts';
import type { BodyResult, ConnectionContext, Job, JobCallback, JobRequest, MultiResult } from './job.ts';
import { createJob } from './job.ts';
import { AbortRegistry, DeadlineTimer } from './job-watch.ts';

function ignore(): void {}

export class Connection {
  readonly #ctx: ConnectionContext;
  /** False for the silent default logger: no log fields are built per answer. */
  readonly #logs: boolean;
  #socket: net.Socket | undefined;
  #reader: LineReader;
  readonly #waiting: Job[] = [];
  readonly #inflight: Job[] = [];
  readonly #writer: CommandWriter;
  readonly #body: BodyReceiver;
  #pumpScheduled = false;
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
    this.#writer = new CommandWriter(ctx, this.#waiting, this.#inflight, this.#deadline);
    this.#body = new BodyReceiver(
      ctx,
      () => this.#closed !== undefined,
      () => {
        this.#drainSafely();
        this.#readSocket();
      },
    );
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
        if (this.#inflight.length > 0 && !this.#body.paused) {
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
    this.#writer.pipelining = on;
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
    // No read here: the greeting's job does not exist yet. Node emits 'readable' on the next
    // tick for bytes already buffered, and starts reading otherwise.
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
    const job = createJob(request, done);
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
    if (this.#closed) return;
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
    else if (socket) {
      // After QUIT's +OK (RFC 1939 §6: the server has already committed the deletions): discard
      // whatever else it sends and close as soon as our end is flushed, like poplib does, so a
      // server that never closes (or sends stray bytes, which paused mode would keep unread)
      // cannot keep the socket, and the process, alive.
      socket.on('error', ignore);
      socket.resume();
      socket.destroySoon();
    }
    this.#deadline.stop();
    for (const job of [...this.#inflight, ...this.#waiting]) this.#settleError(job, err);
    this.#inflight.length = 0;
    this.#writer.inflightBytes = 0;
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
    this.#writer.write(socket);
  }

  #abortJob(job: Job): void {
    const err = new Pop3Error('ERR_POP3_ABORTED', `${job.verb} was aborted`);
    if (job.phase === 'waiting') {
      // Left in the queue and skipped by the writer: no O(n) search per aborted job.
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
    this.#body.resume();
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
      this.#writer.inflightBytes -= done.windowBytes;
    }
    const next = this.#inflight[0];
    if (next && next.phase === 'sent' && next.line !== undefined)
      this.#deadline.watch(next, this.#ctx.timeouts.command);
    this.#schedulePump();
  }

  /** Reads what the socket holds, unless a slow body consumer has paused the connection. */
  #readSocket(): void {
    const socket = this.#socket;
    while (socket && !this.#body.paused && !this.#detached && !this.#closed) {
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
        if (this.#body.paused) return;
        const data = this.#reader.takeBuffered();
        if (data.length === 0) return;
        const rest = this.#body.feed(head, data);
        if (rest === undefined) return;
        this.#finishHead();
        this.#reader.push(rest);
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
        // RFC 2595 §4 / architecture.md R10: nothing may follow +OK before the handshake.
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
      // After QUIT's +OK, bytes in the same read are not an answer to anything: stop here.
      if (job.closes) this.end();
      return;
    }
    if (job.kind === 'multi') {
      job.phase = 'lines';
      job.status = response;
      job.collector = new MultilineCollector(this.#ctx.limits.maxMultilineResponse);
      return;
    }
    // Body: hand a stream to the caller now; bytes flow as they arrive.
    const stream = this.#body.open(job, response);
    // From here the socket's idle timeout guards the body (it may take long, with progress).
    this.#deadline.unwatch(job);
    // BodyStream keeps an error from crashing the process when the body fails before the caller
    // holds the stream (a size mismatch in the first chunk).
    this.#settle(job, { status: response, stream } satisfies BodyResult);
  }
}
