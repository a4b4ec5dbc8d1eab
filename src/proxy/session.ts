/**
 * One local connection to the proxy, orchestrated like the server's session (server/session.ts):
 * greet; read lines through the server's {@link SessionInput} (hard line cap, pipelined input
 * paused past its high-water mark, idle timer); resolve each against the proxy's command table
 * (commands.ts) and run it strictly in order (PIPELINING, RFC 2449 §6.6); answer through the
 * server's {@link AnswerWriter} (CR/LF refused, batching, 'drain' backpressure). The state machine
 * is AUTHORIZATION → TRANSACTION (an upstream client logged in for the account) → end. A session
 * that ends without QUIT closes the upstream without QUIT, so nothing is deleted (RFC 1939 §6).
 *
 * Look-ahead (TRANSACTION): when a relayed command runs, the pipelined commands the local client
 * has already sent (complete lines already read, never a wait for more) are resolved and started
 * upstream, up to LOOKAHEAD_COMMANDS, so the upstream answers RETR n+1 while RETR n's body is
 * relayed instead of one round trip per command through two hops. They are answered strictly in
 * order, each at its turn. Bounded by count here and in octets by the client's pipeline byte
 * window; the upstream's answers are read only as the local client takes them (the client's
 * body stream and socket pause), so memory does not grow with the window. The window stops at
 * the first command that cannot be started ahead (QUIT, anything refused or not relayed): QUIT
 * reaches the upstream only after every earlier answer was written. No look-ahead while the
 * local client is not reading its answers (the writer's stall), or past the command cap.
 *
 * Over 400 lines (architecture.md R1): the look-ahead shares the session's input, writer and
 * loop state (the pending line, the stall), so it lives here rather than behind another seam.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Pop3Client } from '../client/pop3-client.ts';
import { isPopgateError } from '../errors.ts';
import { isLoopbackAddress } from '../internal/loopback.ts';
import { capForAudit } from '../observability/audit.ts';
import { AnswerWriter } from '../server/answer-writer.ts';
import { authLineLength, MAX_BAD_COMMANDS } from '../server/limits.ts';
import type { ListenerKind } from '../server/options.ts';
import { type NextLine, SessionInput } from '../server/session-input.ts';
import type { TlsMaterial } from '../server/tls.ts';
import { waitForHandshake } from '../server/tls.ts';
import { resolveProxyCommand } from './commands.ts';
import type { ProxyContext, ProxySessionStats, ProxyShared, ProxyState } from './context.ts';
import type { ProxyAccount } from './options.ts';
import type { Finish } from './relay.ts';
import { upstreamLabel } from './upstream.ts';

/** Pipelined local commands started upstream ahead of their turn, at most. */
export const LOOKAHEAD_COMMANDS = 128;

/** A local command read ahead of its turn; `started` when it was sent upstream already. */
interface Ahead {
  readonly line: Buffer;
  readonly started: Finish | undefined;
}

/** The input's next line, asked for and maybe not here yet. */
interface PendingLine {
  readonly promise: Promise<NextLine>;
  value?: NextLine;
}

type EndReason = 'quit' | 'dropped' | 'idle' | 'shutdown' | 'limit' | 'error' | 'upstream-lost';
const GRACEFUL: ReadonlySet<EndReason> = new Set(['quit', 'idle', 'shutdown', 'limit', 'upstream-lost']);

/** How a listener was bound: its kind and whether its address is loopback. */
export interface ListenerInfo {
  readonly kind: ListenerKind;
  readonly loopback: boolean;
}

export class ProxySession implements ProxyContext {
  readonly id = randomBytes(6).toString('hex');
  readonly remoteAddress: string;
  readonly stats: ProxySessionStats = { commands: 0, retr: 0, top: 0, dele: 0, bytesOut: 0, failedLogins: 0 };
  pendingUser: string | undefined;
  /** Resolves when the session has fully ended (upstream closed, slot returned, audited). */
  readonly finished: Promise<void>;

  readonly #shared: ProxyShared;
  readonly #tls: TlsMaterial | undefined;
  readonly #listener: ListenerInfo;
  readonly #started = Date.now();
  readonly #writer: AnswerWriter;
  readonly #input: SessionInput;
  #socket: Socket;
  #secure: boolean;
  #state: ProxyState = 'AUTHORIZATION';
  #account: ProxyAccount | undefined;
  #localUser: string | undefined;
  #upstream: Pop3Client | undefined;
  #upstreamClosed = false;
  #badCommands = 0;
  #closing = false;
  #busy = false;
  #pendingEnd: 'idle' | 'limit' | undefined;
  #endReason: EndReason = 'dropped';
  #timer: NodeJS.Timeout;
  /** Commands read ahead (TRANSACTION look-ahead), in order. */
  readonly #ahead: Ahead[] = [];
  #pendingLine: PendingLine | undefined;

  constructor(
    socket: Socket,
    shared: ProxyShared,
    tls: TlsMaterial | undefined,
    listener: ListenerInfo,
    secure: boolean,
  ) {
    this.#socket = socket;
    this.#shared = shared;
    this.#tls = tls;
    this.#listener = listener;
    this.#secure = secure;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    const { limits } = shared.options;
    this.#writer = new AnswerWriter(socket, {
      hasQueuedInput: () => this.#input.buffered > 0 || this.#ahead.length > 0,
      closing: () => this.#closing,
      // The server's output bound (architecture.md R7): a client that does not read its
      // answers gets no more of its input read or parsed, and only reading resets its idle timer.
      onStall: () => this.#input.hold(),
      onRoom: () => {
        this.#input.release();
        this.#input.touch();
        // A look-ahead may have left an ask for the next line waiting while the socket was
        // held: wake it so it resumes the socket (SessionInput resumes only before a wait).
        if (this.#pendingLine !== undefined) this.#input.wake();
      },
    });
    this.#input = new SessionInput(
      socket,
      { maxLineLength: authLineLength(limits), idleTimeoutMs: limits.idleTimeoutMs },
      {
        closing: () => this.#closing,
        onLine: () => this.#writer.cork(),
        onWait: () => this.#writer.uncork(),
        onOverflow: () => this.end('limit'),
        onClose: () => {
          this.#closing = true;
        },
        onIdle: () => this.#timeout('idle'),
      },
    );
    this.#timer = setTimeout(() => this.#timeout('limit'), limits.maxSessionMs);
    this.finished = this.#run();
  }

  get state(): ProxyState {
    return this.#state;
  }
  get secure(): boolean {
    return this.#secure;
  }
  get credentialsAllowed(): boolean {
    if (this.#secure) return true;
    // architecture.md: plaintext credentials only between loopback ends, and only when allowed.
    return (
      this.#shared.options.plaintextLoopback &&
      this.#listener.loopback &&
      isLoopbackAddress(this.remoteAddress) &&
      isLoopbackAddress(this.#socket.localAddress ?? '')
    );
  }
  get stlsAvailable(): boolean {
    return !this.#secure && this.#tls !== undefined && this.#listener.kind === 'starttls';
  }
  get closing(): boolean {
    return this.#closing;
  }
  get shared(): ProxyShared {
    return this.#shared;
  }
  get upstream(): Pop3Client | undefined {
    return this.#upstream;
  }

  upstreamBroken(): boolean {
    return this.#upstreamClosed || this.#upstream?.state === 'closed';
  }

  answered(): boolean {
    return this.#writer.answered;
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
  message(first: string, body: Readable): Promise<number> {
    return this.#writer.message(first, body);
  }
  continuation(data: string): void {
    this.#writer.continuation(data);
  }

  async readResponse(): Promise<string | undefined> {
    this.#writer.uncork();
    const line = await this.#nextLine();
    return line === undefined ? undefined : line.toString('latin1');
  }

  async startTls(): Promise<void> {
    const tls = this.#tls;
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
      this.end('error');
      return;
    }
    this.#secure = true;
  }

  enterTransaction(account: ProxyAccount, upstream: Pop3Client, localUser: string): void {
    this.#account = account;
    this.#localUser = localUser;
    this.#upstream = upstream;
    this.#state = 'TRANSACTION';
    this.#shared.metrics?.upstreamSessions.inc();
    upstream.on('close', () => {
      this.#upstreamClosed = true;
    });
  }

  end(how: EndReason): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#endReason = how;
    this.#writer.end(GRACEFUL.has(how));
    this.#input.wake();
  }

  /** Graceful shutdown: `-ERR [SYS/TEMP]` unless a command is answering, then the end. */
  shutdown(): void {
    if (!this.#closing && !this.#busy) this.err('popgate proxy shutting down; try again later', 'SYS/TEMP');
    this.end('shutdown');
  }

  // --- the command loop -----------------------------------------------------------------------

  async #run(): Promise<void> {
    const { options, metrics, logger } = this.#shared;
    metrics?.sessions.inc({ listener: this.#listener.kind });
    metrics?.sessionsTotal.inc({ listener: this.#listener.kind });
    try {
      this.ok(options.greeting);
      for (;;) {
        const room = this.#writer.waitForRoom();
        if (room !== undefined) await room;
        if (this.#closing) break;
        const ahead = this.#ahead.shift();
        const line = ahead?.line ?? (await this.#nextLine());
        if (line === undefined) break;
        this.#busy = true;
        await this.#dispatch(line, ahead?.started);
        this.#busy = false;
        if (this.#closing) break;
        if (this.#pendingEnd !== undefined) {
          this.#timeout(this.#pendingEnd);
          break;
        }
        if (this.stats.failedLogins >= options.limits.maxFailedLoginsPerSession) {
          this.err('Too many failed logins; closing', 'AUTH');
          this.end('limit');
          break;
        }
        if (
          this.#badCommands >= MAX_BAD_COMMANDS ||
          this.stats.commands >= options.limits.maxCommandsPerSession
        ) {
          this.err('Too many commands; closing');
          this.end('limit');
          break;
        }
        // Before login every command so far was a pre-login one: the server's small cap applies.
        if (this.#state === 'AUTHORIZATION' && this.stats.commands >= options.limits.maxCommandsBeforeLogin) {
          this.err('Too many commands before login; closing.');
          this.end('limit');
          break;
        }
      }
    } catch (error) {
      logger.error(
        { session: this.id, code: isPopgateError(error) ? error.code : undefined },
        'proxy session failed',
      );
      this.#endReason = 'error';
    } finally {
      await this.#cleanup();
    }
  }

  /** The input's next line, asked for once: a pending ask is kept for the next reader. */
  #askLine(): PendingLine {
    if (this.#pendingLine === undefined) {
      const pending: PendingLine = { promise: this.#input.next() };
      void pending.promise.then((value) => {
        pending.value = value;
      });
      this.#pendingLine = pending;
    }
    return this.#pendingLine;
  }

  /** A complete line already read, without waiting for the peer; undefined when none is. */
  async #lineIfReady(): Promise<Buffer | undefined> {
    const pending = this.#askLine();
    // SessionInput.next() settles at once when a line is buffered; one turn lets `value` be set.
    await Promise.resolve();
    if (!Buffer.isBuffer(pending.value)) return undefined; // not yet, or the end: left for #nextLine
    this.#pendingLine = undefined;
    return pending.value;
  }

  /** Starts buffered pipelined commands upstream ahead of their turn (see the header). */
  async #lookAhead(): Promise<void> {
    const { limits } = this.#shared.options;
    while (
      this.#state === 'TRANSACTION' &&
      this.#ahead.length < LOOKAHEAD_COMMANDS &&
      this.stats.commands + this.#ahead.length < limits.maxCommandsPerSession &&
      !this.#closing &&
      !this.#writer.stalled &&
      (this.#ahead.length === 0 || this.#ahead[this.#ahead.length - 1]!.started !== undefined)
    ) {
      const line = await this.#lineIfReady();
      if (line === undefined) return;
      const resolved = resolveProxyCommand(this.#state, line, limits);
      const started =
        resolved.kind === 'run' && resolved.command.start !== undefined
          ? resolved.command.start(this, resolved.args)
          : undefined;
      this.#ahead.push({ line, started });
    }
  }

  async #nextLine(): Promise<Buffer | undefined> {
    const pending = this.#askLine();
    this.#pendingLine = undefined;
    const next = await pending.promise;
    if (next === 'too-long') {
      this.err('Line too long; closing');
      this.end('limit');
      return undefined;
    }
    return next === 'ended' ? undefined : next;
  }

  async #dispatch(line: Buffer, started?: Finish): Promise<void> {
    this.stats.commands += 1;
    this.#writer.beginCommand();
    const resolved = resolveProxyCommand(this.#state, line, this.#shared.options.limits);
    if (resolved.kind === 'refuse') {
      if (resolved.bad) this.#badCommands += 1;
      this.err(resolved.text);
      if (resolved.fatal) this.end('limit');
      return;
    }
    try {
      if (resolved.command.start !== undefined && this.#state === 'TRANSACTION') {
        // This command's own upstream call first, then the ones after it, in order.
        started ??= resolved.command.start(this, resolved.args);
        await this.#lookAhead();
      }
      await resolved.command.run(this, resolved.args, started);
    } catch (error) {
      this.#shared.logger.warn(
        {
          session: this.id,
          verb: resolved.command.verb,
          code: isPopgateError(error) ? error.code : undefined,
        },
        'proxy command failed',
      );
      // A multi-line answer may be half written: the only safe move is to drop the connection.
      if (this.#writer.answered) this.end(this.upstreamBroken() ? 'upstream-lost' : 'error');
      else {
        this.err('popgate: temporary failure; reconnect', 'SYS/TEMP');
        this.end('error');
      }
    }
  }

  #timeout(reason: 'idle' | 'limit'): void {
    if (this.#closing) return;
    if (this.#busy) {
      this.#pendingEnd = reason;
      return;
    }
    if (reason === 'idle') this.err('Disconnected for inactivity');
    else this.err('Session time limit reached; reconnect', 'SYS/TEMP');
    this.end(reason);
  }

  async #cleanup(): Promise<void> {
    clearTimeout(this.#timer);
    this.#input.stop();
    if (!this.#closing) this.end(this.#endReason);
    const shared = this.#shared;
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      // Without QUIT the upstream deletes nothing (RFC 1939 §6); after QUIT this is a no-op.
      upstream.close();
      shared.metrics?.upstreamSessions.dec();
    }
    if (this.#account !== undefined) shared.releaseAccount(this.#account.name);
    shared.metrics?.sessions.dec({ listener: this.#listener.kind });
    shared.audit?.emit({
      event: 'proxy.logout',
      session: this.id,
      remoteAddress: this.remoteAddress,
      localUser: capForAudit(this.#localUser),
      account: this.#account?.name,
      upstream: this.#account ? upstreamLabel(this.#account) : undefined,
      how: this.#endReason,
      commands: this.stats.commands,
      retr: this.stats.retr,
      top: this.stats.top,
      dele: this.stats.dele,
      bytesOut: this.stats.bytesOut,
      durationMs: Date.now() - this.#started,
    });
  }
}
