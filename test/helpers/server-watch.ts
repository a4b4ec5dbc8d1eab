// Observers for in-process server tests, without any hook in src/: the server side of each
// accepted TCP connection (Node's built-in `net.server.socket` diagnostics channel) and the
// server's audit events. Tests wait on these events instead of sleeping.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { AuditEvent, AuditSink, LogoutEvent } from '../../src/observability/audit.ts';

const SERVER_SOCKET = 'net.server.socket';

/**
 * Watches the server side of the connections accepted on `port`: the largest output queue
 * (`socket.writableLength`, measured after every write, so no peak is missed) and the moment the
 * server stops reading because its output waits for the peer (the session stalled).
 */
export class ServerSocketWatch {
  readonly #port: () => number;
  readonly sockets: Socket[] = [];
  /** The largest `writableLength` any watched socket had after a write. */
  peakQueued = 0;
  #stallWaiters: ((socket: Socket) => void)[] = [];

  /** `port` is read when a connection arrives (the server may bind after the watch starts). */
  constructor(port: () => number) {
    this.#port = port;
    subscribe(SERVER_SOCKET, this.#onSocket);
  }

  stop(): void {
    unsubscribe(SERVER_SOCKET, this.#onSocket);
  }

  /**
   * Resolves with the server socket once the server stops reading it (`pause()`) while its own
   * output waits for the peer to read (`writableNeedDrain`): the session stalled on its output.
   * Rejects after `timeoutMs` (the stall never came).
   */
  stalled(timeoutMs = 30_000): Promise<Socket> {
    for (const socket of this.sockets) {
      if (socket.isPaused() && socket.writableNeedDrain) return Promise.resolve(socket);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the server never stalled (peak output queue ${this.peakQueued} octets)`));
      }, timeoutMs);
      this.#stallWaiters.push((socket) => {
        clearTimeout(timer);
        resolve(socket);
      });
    });
  }

  readonly #onSocket = (message: unknown): void => {
    const { socket } = message as { socket: Socket };
    if (socket.localPort !== this.#port()) return;
    this.sockets.push(socket);
    const write = socket.write;
    socket.write = ((...args: Parameters<Socket['write']>) => {
      const result = write.apply(socket, args);
      this.peakQueued = Math.max(this.peakQueued, socket.writableLength);
      return result;
    }) as Socket['write'];
    const pause = socket.pause;
    socket.pause = () => {
      const result = pause.call(socket);
      if (socket.writableNeedDrain) {
        const waiters = this.#stallWaiters;
        this.#stallWaiters = [];
        for (const wake of waiters) wake(socket);
      }
      return result;
    };
  };
}

/** An audit sink that keeps the events and lets a test wait for one. */
export class AuditRecorder implements AuditSink {
  readonly events: AuditEvent[] = [];
  #waiters: (() => void)[] = [];

  emit(event: AuditEvent): void {
    this.events.push(event);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `check(events)` holds, waiting for further events up to `timeoutMs`. */
  async until(check: (events: readonly AuditEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.events)) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `audit events never matched; have ${JSON.stringify(this.events.map((e) => e.event))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first event matching `match`, waiting for it up to `timeoutMs`. */
  async next<E extends AuditEvent>(match: (event: AuditEvent) => event is E, timeoutMs = 30_000): Promise<E> {
    await this.until((events) => events.some(match), timeoutMs);
    return this.events.find(match)!;
  }

  /** Logout events so far. */
  get logouts(): number {
    return this.events.filter((e) => e.event === 'logout').length;
  }

  /** The logout event (the session has fully ended: lock released, counters returned). */
  logout(timeoutMs?: number): Promise<LogoutEvent> {
    return this.next((e): e is LogoutEvent => e.event === 'logout', timeoutMs);
  }
}
