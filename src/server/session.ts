/**
 * One POP3 connection: reads lines under hard limits, dispatches them strictly in order
 * (PIPELINING, RFC 2449 §6.6), writes answers through one gate, and owns the session's timers.
 * Login and UPDATE live in session-auth.ts; commands in commands/*.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { isPopgateError } from '../errors.ts';
import { DotEncoder } from '../protocol/dot-stuffing.ts';
import { LineReader } from '../protocol/line-reader.ts';
import { formatStatusLine } from '../protocol/response.ts';
import type { CommandContext, LoginFailure, LoginRequest, SessionStats, Transaction } from './context.ts';
import { dispatch } from './dispatcher.ts';
import { measureFrame, writeFrame } from './frame.ts';
import type { ListenerKind } from './options.ts';
import { commitUpdate, enterTransaction, recordLoginFailure } from './session-auth.ts';
import type { ServerShared } from './shared.ts';
import type { SessionState } from './state.ts';

/** Bytes of unread pipelined input after which the socket is paused (backpressure). */
const INPUT_HIGH_WATER = 256 * 1024;
/**
 * Octets of answers queued on the socket after which a multi-line answer waits for 'drain'.
 * Larger than the socket's own 16 KiB mark so that a pipelined burst of small RETRs goes out
 * in few large writes (and few TLS records) per event-loop turn; still a hard per-session bound.
 */
const OUTPUT_HIGH_WATER = 128 * 1024;
/**
 * While more commands are queued (a pipelined burst), answers are copied into a batch of this
 * size and handed to the socket as one Buffer: one allocation and one queued write per ~64 KiB
 * instead of several per message. Interactive commands (nothing queued) are written directly.
 */
const BATCH_SIZE = 64 * 1024;
/** Malformed or unknown commands tolerated before the session is closed. */
const MAX_BAD_COMMANDS = 20;

/** Why a session ended (the logout audit event's `how`). */
export type EndReason = 'quit' | 'dropped' | 'idle' | 'expired' | 'shutdown' | 'limit' | 'error';

export class Pop3Session implements CommandContext {
  readonly id = randomBytes(6).toString('hex');
  readonly remoteAddress: string;
  readonly stats: SessionStats = { commands: 0, retr: 0, top: 0, dele: 0, bytesOut: 0, failedLogins: 0 };
  pendingUser: string | undefined;
  badCommands = 0;

  readonly #shared: ServerShared;
  readonly #listener: ListenerKind;
  readonly #started: number;
  #socket: Socket;
  #secure: boolean;
  #state: SessionState = 'AUTHORIZATION';
  #transaction: Transaction | undefined;
  #reader: LineReader;
  #wake: (() => void) | undefined;
  #inputEnded = false;
  #corked = false;
  /** The output batch of a pipelined burst (see {@link BATCH_SIZE}); dropped when flushed. */
  #batch: Buffer | undefined;
  #batchLength = 0;
  #closing = false;
  #endReason: EndReason = 'dropped';
  #answered = false;
  #userSlot: string | undefined;
  #timers: NodeJS.Timeout[] = [];
  #idleTimer: NodeJS.Timeout | undefined;
  #deleted = 0;
  /** A command is running (its answer may be half written). */
  #busy = false;
  /** A timer fired while a command was running: end after its answer. */
  #pendingEnd: EndReason | undefined;
  /** Resolves when the session has fully ended (lock released, counters returned). */
  readonly finished: Promise<void>;

  constructor(socket: Socket, shared: ServerShared, listener: ListenerKind, secure: boolean) {
    this.#socket = socket;
    this.#shared = shared;
    this.#listener = listener;
    this.#secure = secure;
    this.#started = shared.now();
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#reader = this.#newReader();
    this.#attach(socket);
    const { limits } = shared.options;
    this.#idleTimer = setTimeout(() => this.#timeout('idle'), limits.idleTimeoutMs);
    this.#timers.push(this.#idleTimer);
    this.#timers.push(setTimeout(() => this.#timeout('limit'), limits.maxSessionMs));
    this.finished = this.#run();
  }

  get state(): SessionState {
    return this.#state;
  }
  get secure(): boolean {
    return this.#secure;
  }
  get credentialsAllowed(): boolean {
    return this.#secure || this.#shared.options.allowPlaintextLoopback;
  }
  get stlsAvailable(): boolean {
    return !this.#secure && this.#shared.tls !== undefined && this.#listener === 'starttls';
  }
  get options() {
    return this.#shared.options;
  }
  get shared(): ServerShared {
    return this.#shared;
  }
  get transaction(): Transaction | undefined {
    return this.#transaction;
  }
  get answered(): boolean {
    return this.#answered;
  }
  get closing(): boolean {
    return this.#closing;
  }

  // --- the one gate to the wire -------------------------------------------------------------

  ok(text = '', code?: string): void {
    this.#answered = true;
    this.#write(formatStatusLine('ok', text, code));
  }

  err(text: string, code?: string): void {
    this.#answered = true;
    this.#write(formatStatusLine('err', text, code));
  }

  multiline(first: string, lines: Iterable<string>): void {
    this.#answered = true;
    let out = formatStatusLine('ok', first);
    for (const line of lines) out += line.startsWith('.') ? `.${line}\r\n` : `${line}\r\n`;
    this.#write(`${out}.\r\n`);
  }

  async message(first: string, body: Readable | Buffer): Promise<number> {
    let bytes: number;
    if (Buffer.isBuffer(body)) {
      this.#answered = true;
      if (this.#closing) return 0;
      bytes = this.#writeFrame(formatStatusLine('ok', first), body);
      await this.#backpressure();
    } else {
      bytes = await this.#stream(first, body);
    }
    this.stats.bytesOut += bytes;
    this.#shared.metrics?.bytesOut.inc(bytes);
    return bytes;
  }

  async #stream(first: string, body: Readable): Promise<number> {
    this.ok(first);
    const encoder = new DotEncoder();
    let bytes = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (this.#closing) break;
        for (const part of encoder.push(chunk)) {
          bytes += part.length;
          this.#write(part);
        }
        const full = this.#backpressure();
        if (full !== undefined) await full;
      }
    } finally {
      body.destroy();
    }
    for (const part of encoder.end()) this.#write(part);
    return bytes;
  }

  continuation(data: string): void {
    this.#write(`+ ${data}\r\n`);
  }

  async readResponse(): Promise<string | undefined> {
    const line = await this.#nextLine();
    return line === undefined ? undefined : line.toString('latin1');
  }

  async startTls(): Promise<void> {
    const tls = this.#shared.tls;
    if (tls === undefined) throw new Error('STLS without TLS material');
    this.#uncork();
    const raw = this.#socket;
    this.#detach(raw);
    // RFC 2595 §4 / STYLE.md §10: anything received before the handshake is dropped unparsed.
    this.#reader = this.#newReader();
    this.pendingUser = undefined;
    const secure = new TLSSocket(raw, { isServer: true, secureContext: tls.current });
    this.#socket = secure;
    this.#attach(secure);
    const ok = await waitForHandshake(secure, this.#shared.options.limits.tlsHandshakeTimeoutMs);
    if (!ok) {
      this.#end('error');
      return;
    }
    this.#secure = true;
  }

  // --- login and update (session-auth.ts) -----------------------------------------------------

  loginFailed(failure: LoginFailure): Promise<void> {
    return recordLoginFailure(this, failure);
  }

  async login(request: LoginRequest): Promise<boolean> {
    const result = await enterTransaction(this, request);
    if (result === undefined) return false;
    this.#transaction = result.transaction;
    this.#userSlot = request.user;
    this.#state = 'TRANSACTION';
    if (result.deadline !== undefined) {
      const ms = Math.max(0, result.deadline - this.#shared.now());
      this.#timers.push(setTimeout(() => this.#timeout('expired'), Math.min(ms, 2 ** 31 - 1)));
    }
    return true;
  }

  async quit(): Promise<void> {
    const tx = this.#transaction;
    if (this.#state === 'TRANSACTION' && tx !== undefined) {
      this.#state = 'UPDATE';
      const deleted = await commitUpdate(this, tx);
      if (deleted === undefined) {
        this.#end('error');
        return;
      }
      this.#deleted = deleted;
      this.#transaction = undefined;
      this.ok(`Logging out, ${deleted} messages deleted.`);
    } else {
      this.ok('Logging out.');
    }
    this.#end('quit');
  }

  /** Graceful shutdown: ends now unless an UPDATE is committing (which then finishes). */
  shutdown(): void {
    if (this.#state === 'UPDATE') return;
    if (!this.#closing && !this.#busy) this.err('Server shutting down; try again later.', 'SYS/TEMP');
    this.#end('shutdown');
  }

  /** Ends the session without further answers (limits, fatal errors). */
  close(reason: EndReason): void {
    this.#end(reason);
  }

  // --- input ----------------------------------------------------------------------------------

  #newReader(): LineReader {
    // The reader's hard cap is the larger SASL cap; command lines are checked against the
    // command cap when parsed (AUTH with an initial response may be as long as the SASL cap).
    return new LineReader({ maxLineLength: this.#shared.options.limits.saslResponseLength + 64 });
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
    } catch {
      this.#end('limit');
      return;
    }
    if (this.#reader.buffered > INPUT_HIGH_WATER) this.#socket.pause();
    this.#wakeUp();
  };

  readonly #onEnd = (): void => {
    this.#inputEnded = true;
    this.#wakeUp();
  };

  readonly #onClose = (): void => {
    this.#inputEnded = true;
    if (this.#state !== 'UPDATE') this.#closing = true;
    this.#wakeUp();
  };

  readonly #onError = (): void => {
    // ECONNRESET and friends: the connection is gone; 'close' follows.
  };

  #attach(socket: Socket): void {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
  }

  #detach(socket: Socket): void {
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    // Keep an error listener on the raw socket: TLSSocket does not take over its errors.
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next line, or undefined when the connection ended or broke a limit. */
  async #nextLine(): Promise<Buffer | undefined> {
    for (;;) {
      if (this.#closing) return undefined;
      let line: Buffer | undefined;
      try {
        line = this.#reader.readLine();
      } catch {
        this.err('Line too long; closing.');
        this.#end('limit');
        return undefined;
      }
      if (line !== undefined) {
        this.#idleTimer?.refresh();
        if (!this.#corked) {
          this.#socket.cork();
          this.#corked = true;
        }
        return line;
      }
      if (this.#inputEnded) return undefined;
      this.#uncork();
      if (this.#socket.isPaused()) this.#socket.resume();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async #run(): Promise<void> {
    const shared = this.#shared;
    shared.metrics?.sessions.inc({ listener: this.#listener });
    shared.metrics?.sessionsTotal.inc({ listener: this.#listener });
    try {
      this.ok(shared.options.greeting);
      for (;;) {
        const line = await this.#nextLine();
        if (line === undefined) break;
        this.#answered = false;
        const started = performance.now();
        this.#busy = true;
        const verb = await dispatch(this, line);
        this.#busy = false;
        if (verb !== undefined)
          shared.metrics?.commandSeconds.observe({ verb }, (performance.now() - started) / 1000);
        if (this.#closing) break;
        if (this.#pendingEnd !== undefined) {
          this.#timeout(this.#pendingEnd);
          break;
        }
        if (this.stats.failedLogins >= shared.options.limits.maxFailedLoginsPerSession) {
          this.#end('limit');
          break;
        }
        if (
          this.badCommands >= MAX_BAD_COMMANDS ||
          this.stats.commands >= shared.options.limits.maxCommandsPerSession
        ) {
          this.err('Too many commands; closing.');
          this.#end('limit');
          break;
        }
      }
    } catch (error) {
      shared.logger.error(
        { session: this.id, code: isPopgateError(error) ? error.code : undefined },
        'session failed',
      );
      this.#endReason = 'error';
    } finally {
      await this.#cleanup();
    }
  }

  // --- output ---------------------------------------------------------------------------------

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
    const size = measureFrame(statusLine, body);
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return size.bodyBytes;
    const at = this.#reserve(size.length);
    if (at !== undefined) {
      writeFrame(this.#batch!, at, statusLine, body, size);
    } else {
      const frame = Buffer.allocUnsafe(size.length);
      writeFrame(frame, 0, statusLine, body, size);
      socket.write(frame);
    }
    return size.bodyBytes;
  }

  /**
   * The offset in the batch where `length` octets go, or undefined (after flushing the batch,
   * so order is kept) when they go straight to the socket: nothing more is queued, or too big.
   */
  #reserve(length: number): number | undefined {
    const pipelined = this.#reader.buffered > 0 && length <= BATCH_SIZE;
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

  #uncork(): void {
    this.#flushBatch();
    if (this.#corked) {
      this.#corked = false;
      this.#socket.uncork();
    }
  }

  /** Waits for 'drain' once the queued output passes {@link OUTPUT_HIGH_WATER}. */
  #backpressure(): Promise<void> | undefined {
    return this.#batchLength + this.#socket.writableLength > OUTPUT_HIGH_WATER ? this.#drain() : undefined;
  }

  #drain(): Promise<void> {
    this.#uncork();
    const socket = this.#socket;
    // 'drain' comes only after a write() that returned false.
    if (socket.destroyed || !socket.writable || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        this.#idleTimer?.refresh();
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  // --- ending ---------------------------------------------------------------------------------

  #timeout(reason: EndReason): void {
    if (this.#closing || this.#state === 'UPDATE') return;
    if (this.#busy) {
      this.#pendingEnd = reason;
      return;
    }
    if (reason === 'idle') this.err('Disconnected for inactivity.');
    else if (reason === 'expired')
      this.err('The access token expired; log in again with a fresh token.', 'AUTH');
    else this.err('Session time limit reached; reconnect.', 'SYS/TEMP');
    this.#end(reason);
  }

  #end(reason: EndReason): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#endReason = reason;
    this.#uncork();
    const socket = this.#socket;
    if (
      reason === 'quit' ||
      reason === 'idle' ||
      reason === 'expired' ||
      reason === 'shutdown' ||
      reason === 'limit'
    ) {
      socket.end();
      // A peer that never reads must not hold the session open.
      setTimeout(() => socket.destroy(), 5_000).unref();
    } else {
      socket.destroy();
    }
    this.#wakeUp();
  }

  async #cleanup(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    if (!this.#closing) this.#end(this.#endReason);
    const shared = this.#shared;
    const tx = this.#transaction;
    this.#transaction = undefined;
    if (tx !== undefined) {
      tx.readAhead.clear();
      // A dropped or aborted session deletes nothing: release without committing.
      try {
        await tx.maildrop.release();
      } catch (error) {
        shared.logger.error(
          { session: this.id, code: isPopgateError(error) ? error.code : undefined },
          'maildrop release failed',
        );
      }
    }
    if (this.#userSlot !== undefined) shared.perUser.release(this.#userSlot);
    shared.metrics?.sessions.dec({ listener: this.#listener });
    shared.audit?.emit({
      event: 'logout',
      session: this.id,
      remoteAddress: this.remoteAddress,
      user: this.#userSlot,
      how: this.#endReason,
      commands: this.stats.commands,
      retr: this.stats.retr,
      top: this.stats.top,
      dele: this.stats.dele,
      bytesOut: this.stats.bytesOut,
      deleted: this.#deleted,
      durationMs: shared.now() - this.#started,
    });
  }
}

/** Resolves true once the TLS handshake completed, false on error, close or timeout. */
export function waitForHandshake(socket: TLSSocket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onFail);
      socket.off('close', onFail);
      resolve(ok);
    };
    const onSecure = () => finish(true);
    const onFail = () => finish(false);
    const timer = setTimeout(onFail, timeoutMs);
    socket.once('secure', onSecure);
    socket.once('error', onFail);
    socket.once('close', onFail);
  });
}
