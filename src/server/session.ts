/**
 * One POP3 connection, orchestrated: greet; read lines (session-input.ts); resolve each against
 * the registry (command-resolver.ts) and run it strictly in order (PIPELINING, RFC 2449 §6.6);
 * answer through the one writer (answer-writer.ts), and read the next line only while the
 * answers queued for the peer are within OUTPUT_HIGH_WATER. The session owns the state, the
 * transaction and the timers, and ends cleanly whatever happens. Login and UPDATE live in
 * session-auth.ts; the commands in commands/*.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { isPopgateError } from '../errors.ts';
import { AnswerWriter } from './answer-writer.ts';
import { resolveCommand } from './command-resolver.ts';
import type { CommandContext, LoginFailure, LoginRequest, SessionStats, Transaction } from './context.ts';
import { authLineLength, MAX_BAD_COMMANDS } from './limits.ts';
import type { LoginHost } from './login-host.ts';
import type { ListenerKind, ListenSpec } from './options.ts';
import { plaintextCredentialsAllowed } from './plaintext-policy.ts';
import type { Pop3Verb } from './registry.ts';
import { commitUpdate, enterTransaction, recordLoginFailure } from './session-auth.ts';
import {
  type EndReason,
  isGraceful,
  releaseSession,
  type TimeoutReason,
  timeoutAnswer,
} from './session-end.ts';
import { SessionInput } from './session-input.ts';
import type { ServerShared } from './shared.ts';
import { nextState, type SessionState } from './state.ts';
import { waitForHandshake } from './tls.ts';

/** The longest a Node timer may wait (a token deadline further away is capped to it). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Pop3Session implements CommandContext, LoginHost {
  readonly id = randomBytes(6).toString('hex');
  readonly remoteAddress: string;
  readonly stats: SessionStats = { commands: 0, retr: 0, top: 0, dele: 0, bytesOut: 0, failedLogins: 0 };
  pendingUser: string | undefined;

  readonly #shared: ServerShared;
  readonly #listener: ListenerKind;
  /** Credentials may be sent before TLS (plaintext-policy.ts): fixed by listener and peer. */
  readonly #plaintextAllowed: boolean;
  readonly #started: number;
  readonly #writer: AnswerWriter;
  readonly #input: SessionInput;
  #socket: Socket;
  #secure: boolean;
  #state: SessionState = 'AUTHORIZATION';
  #transaction: Transaction | undefined;
  #badCommands = 0;
  /** Commands received in AUTHORIZATION (see `maxCommandsBeforeLogin`). */
  #preLoginCommands = 0;
  #closing = false;
  #endReason: EndReason = 'dropped';
  #userSlot: string | undefined;
  #timers: NodeJS.Timeout[] = [];
  #deleted = 0;
  /** A command is running (its answer may be half written). */
  #busy = false;
  /** A timer fired while a command was running: end after its answer. */
  #pendingEnd: TimeoutReason | undefined;
  /** Resolves when the session has fully ended (lock released, counters returned). */
  readonly finished: Promise<void>;

  constructor(socket: Socket, shared: ServerShared, listener: ListenSpec, secure: boolean) {
    this.#socket = socket;
    this.#shared = shared;
    this.#listener = listener.kind;
    this.#secure = secure;
    this.#started = shared.now();
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    const { limits } = shared.options;
    this.#plaintextAllowed = plaintextCredentialsAllowed({
      allowPlaintextLoopback: shared.options.allowPlaintextLoopback,
      listenerHost: listener.host,
      peerAddress: socket.remoteAddress,
    });
    this.#writer = new AnswerWriter(socket, {
      hasQueuedInput: () => this.#input.buffered > 0,
      closing: () => this.#closing,
      // A peer that does not read its answers gets no more of its input read or parsed, so
      // nothing (not even a line) resets its idle timer: only reading does (Dovecot's rule).
      onStall: () => this.#input.hold(),
      onRoom: () => {
        this.#input.release();
        this.#input.touch();
      },
    });
    // The reader's hard cap is the AUTH line's (the longest line there is); the resolver holds
    // every other command line to the shorter command cap.
    const inputLimits = { maxLineLength: authLineLength(limits), idleTimeoutMs: limits.idleTimeoutMs };
    this.#input = new SessionInput(socket, inputLimits, {
      closing: () => this.#closing,
      onLine: () => this.#writer.cork(),
      onWait: () => this.#writer.uncork(),
      onOverflow: () => this.#end('limit'),
      onClose: () => {
        // An UPDATE already committing finishes (and is audited as a quit).
        if (this.#state !== 'UPDATE') this.#closing = true;
      },
      onIdle: () => this.#timeout('idle'),
    });
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
    return this.#secure || this.#plaintextAllowed;
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
  get closing(): boolean {
    return this.#closing;
  }

  // --- answers (all through the writer) -------------------------------------------------------

  ok(text = '', code?: string): void {
    this.#writer.ok(text, code);
  }

  err(text: string, code?: string): void {
    this.#writer.err(text, code);
  }

  multiline(first: string, lines: Iterable<string>): void {
    this.#writer.multiline(first, lines);
  }

  async message(first: string, body: Readable | Buffer): Promise<number> {
    const bytes = await this.#writer.message(first, body);
    this.stats.bytesOut += bytes;
    this.#shared.metrics?.bytesOut.inc(bytes);
    return bytes;
  }

  continuation(data: string): void {
    this.#writer.continuation(data);
  }

  async readResponse(): Promise<string | undefined> {
    const line = await this.#nextLine();
    return line === undefined ? undefined : line.toString('latin1');
  }

  async startTls(): Promise<void> {
    const tls = this.#shared.tls;
    if (tls === undefined) throw new Error('STLS without TLS material');
    this.#writer.uncork();
    const secure = new TLSSocket(this.#socket, { isServer: true, secureContext: tls.current });
    // RFC 2595 §4 / architecture.md R10: anything received before the handshake is dropped unparsed.
    this.#input.replaceSocket(secure);
    this.#writer.replaceSocket(secure);
    this.#socket = secure;
    this.pendingUser = undefined;
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
    this.#state = nextState(this.#state, 'login');
    if (result.deadline !== undefined) {
      const ms = Math.max(0, result.deadline - this.#shared.now());
      this.#timers.push(setTimeout(() => this.#timeout('expired'), Math.min(ms, MAX_TIMER_MS)));
    }
    return true;
  }

  async quit(): Promise<void> {
    const tx = this.#transaction;
    if (this.#state === 'TRANSACTION' && tx !== undefined) {
      this.#state = nextState(this.#state, 'quit');
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

  // --- the command loop -----------------------------------------------------------------------

  async #run(): Promise<void> {
    const shared = this.#shared;
    const { limits } = shared.options;
    shared.metrics?.sessions.inc({ listener: this.#listener });
    shared.metrics?.sessionsTotal.inc({ listener: this.#listener });
    try {
      this.ok(shared.options.greeting);
      for (;;) {
        // Output bound (architecture.md R7): no line is read or parsed while the answers
        // queued for the peer are over OUTPUT_HIGH_WATER, whatever the state or command.
        const room = this.#writer.waitForRoom();
        if (room !== undefined) await room;
        if (this.#closing) break;
        const line = await this.#nextLine();
        if (line === undefined) break;
        const started = performance.now();
        this.#busy = true;
        const verb = await this.#dispatch(line);
        this.#busy = false;
        if (verb !== undefined)
          shared.metrics?.commandSeconds.observe({ verb }, (performance.now() - started) / 1000);
        if (this.#closing) break;
        if (this.#pendingEnd !== undefined) {
          this.#timeout(this.#pendingEnd);
          break;
        }
        if (this.stats.failedLogins >= limits.maxFailedLoginsPerSession) {
          this.#end('limit');
          break;
        }
        if (this.#badCommands >= MAX_BAD_COMMANDS || this.stats.commands >= limits.maxCommandsPerSession) {
          this.err('Too many commands; closing.');
          this.#end('limit');
          break;
        }
        if (this.#state === 'AUTHORIZATION' && this.#preLoginCommands >= limits.maxCommandsBeforeLogin) {
          this.err('Too many commands before login; closing.');
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

  /** The next line, or undefined when the connection ended or broke a limit. */
  async #nextLine(): Promise<Buffer | undefined> {
    const next = await this.#input.next();
    if (next === 'too-long') {
      this.err('Line too long; closing.');
      this.#end('limit');
      return undefined;
    }
    return next === 'ended' ? undefined : next;
  }

  /** Resolves and runs one command line; returns the verb that ran (for latency metrics). */
  async #dispatch(line: Buffer): Promise<Pop3Verb | undefined> {
    const shared = this.#shared;
    this.stats.commands += 1;
    if (this.#state === 'AUTHORIZATION') this.#preLoginCommands += 1;
    this.#writer.beginCommand();
    const resolved = resolveCommand(
      shared.registry,
      this.#state,
      line,
      shared.options.limits,
      (handler) => handler.available?.(this) !== false,
    );
    if (resolved.kind === 'refuse') {
      if (resolved.bad) this.#badCommands += 1;
      this.err(resolved.text);
      if (resolved.fatal) this.#end('limit');
      return undefined;
    }
    const { handler, args } = resolved;
    try {
      await handler.run(this, args);
    } catch (error) {
      shared.logger.error(
        { session: this.id, verb: handler.verb, code: isPopgateError(error) ? error.code : undefined },
        'command failed',
      );
      // A multi-line answer may be half written: the only safe move is to close.
      if (this.#writer.answered) this.#end('error');
      else this.err('Temporary failure; try again.', 'SYS/TEMP');
    }
    return handler.verb;
  }

  // --- ending ---------------------------------------------------------------------------------

  #timeout(reason: TimeoutReason): void {
    if (this.#closing || this.#state === 'UPDATE') return;
    if (this.#busy && this.#writer.stalled) {
      // Half an answer is queued and the peer does not read it: no answer can follow, end now
      // (Dovecot: "Disconnected for inactivity in reading our output").
      this.#end(reason, false);
      return;
    }
    if (this.#busy) {
      this.#pendingEnd = reason;
      return;
    }
    const answer = timeoutAnswer(reason);
    this.err(answer.text, answer.code);
    this.#end(reason);
  }

  #end(reason: EndReason, graceful = isGraceful(reason)): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#endReason = reason;
    this.#writer.end(graceful);
    this.#input.discard();
    this.#input.wake();
  }

  async #cleanup(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    this.#input.stop();
    if (!this.#closing) this.#end(this.#endReason);
    const transaction = this.#transaction;
    this.#transaction = undefined;
    await releaseSession(this.#shared, {
      id: this.id,
      remoteAddress: this.remoteAddress,
      listener: this.#listener,
      transaction,
      user: this.#userSlot,
      how: this.#endReason,
      stats: this.stats,
      deleted: this.#deleted,
      started: this.#started,
    });
  }
}
