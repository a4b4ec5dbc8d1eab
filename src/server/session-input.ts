/**
 * A session's input side: socket chunks into the hard-capped {@link LineReader}, lines out one
 * at a time. A client that pipelines faster than it is answered gets its socket paused past
 * INPUT_HIGH_WATER and resumed once everything read was handled; while the session's output is
 * stalled (a peer that does not read its answers) the socket is held paused ({@link hold}) and
 * the session asks for no line. The idle timer runs here: a line, or a drained answer, is what
 * proves the peer alive, so a peer that neither sends nor reads meets it even mid-answer. At
 * STLS the socket is swapped and everything read before the handshake is dropped unparsed.
 */
import type { Socket } from 'node:net';
import { LineReader } from '../protocol/line-reader.ts';
import { INPUT_HIGH_WATER } from './limits.ts';

/** What the input asks of its session. */
export interface InputHooks {
  /** The session is ending: hand out no more lines. */
  closing(): boolean;
  /** A line is handed out (the writer corks for the burst's answers). */
  onLine(): void;
  /** Nothing complete is buffered and input waits for the peer (the writer flushes). */
  onWait(): void;
  /** A chunk broke the reader's hard line cap: terminal. */
  onOverflow(): void;
  /** The socket closed. */
  onClose(): void;
  /** No line for the idle timeout. */
  onIdle(): void;
}

/** What {@link SessionInput.next} gives: a line, the end of input, or a line over the cap. */
export type NextLine = Buffer | 'ended' | 'too-long';

export class SessionInput {
  readonly #hooks: InputHooks;
  readonly #maxLineLength: number;
  readonly #idleTimer: NodeJS.Timeout;
  #socket: Socket;
  #reader: LineReader;
  #wake: (() => void) | undefined;
  #ended = false;
  #held = false;

  constructor(socket: Socket, limits: { maxLineLength: number; idleTimeoutMs: number }, hooks: InputHooks) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#maxLineLength = limits.maxLineLength;
    this.#reader = new LineReader({ maxLineLength: limits.maxLineLength });
    this.#attach(socket);
    this.#idleTimer = setTimeout(() => hooks.onIdle(), limits.idleTimeoutMs);
  }

  /** Octets received and not yet handed out (pipelined commands waiting). */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** The next line; waits for the peer when none is complete. */
  async next(): Promise<NextLine> {
    for (;;) {
      if (this.#hooks.closing()) return 'ended';
      let line: Buffer | undefined;
      try {
        line = this.#reader.readLine();
      } catch {
        return 'too-long';
      }
      if (line !== undefined) {
        this.#idleTimer.refresh();
        this.#hooks.onLine();
        return line;
      }
      if (this.#ended) return 'ended';
      this.#hooks.onWait();
      if (!this.#held && this.#socket.isPaused()) this.#socket.resume();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Wakes a pending {@link next} (the session is ending). */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The output is stalled: read nothing more from the socket until {@link release}. */
  hold(): void {
    this.#held = true;
    this.#socket.pause();
  }

  /** The output drained: reading may go on (resumed once the buffered lines are handled). */
  release(): void {
    this.#held = false;
  }

  /**
   * The session ends: whatever still arrives is read and dropped unparsed, so the peer's own
   * close is seen (a paused socket would sit half-closed until the writer's grace timer).
   */
  discard(): void {
    this.#held = false;
    this.#socket.off('data', this.#onData);
    this.#socket.resume();
  }

  /** The peer showed life without sending a line (it read an answer). */
  touch(): void {
    this.#idleTimer.refresh();
  }

  /** STLS (RFC 2595 §4, architecture.md R10): reads from `socket`; bytes read before it are dropped. */
  replaceSocket(socket: Socket): void {
    this.#detach(this.#socket);
    this.#reader = new LineReader({ maxLineLength: this.#maxLineLength });
    this.#socket = socket;
    this.#held = false;
    this.#attach(socket);
  }

  /** Stops the idle timer (the session is over). */
  stop(): void {
    clearTimeout(this.#idleTimer);
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
    } catch {
      this.#hooks.onOverflow();
      return;
    }
    if (this.#reader.buffered > INPUT_HIGH_WATER) this.#socket.pause();
    this.wake();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.wake();
  };

  readonly #onClose = (): void => {
    this.#ended = true;
    this.#hooks.onClose();
    this.wake();
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
}
