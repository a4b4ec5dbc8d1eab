/**
 * Pop3Client: a POP3 client (RFC 1939, 2449, 2595, 5034) that authenticates with OAuth2 access
 * tokens (XOAUTH2, OAUTHBEARER RFC 7628), verifies TLS always, pipelines when the server says
 * PIPELINING, and streams messages without buffering them. A little over 400 lines
 * (architecture.md R1): it is the public surface, one short method per POP3 command, each with
 * its TSDoc; the work is in connection.ts, login.ts and retrieval.ts.
 *
 * @example
 * ```ts
 * const client = new Pop3Client({ host: 'pop.example.com', tls: 'implicit' });
 * await client.connect();
 * await client.authenticate({ mechanism: 'OAUTHBEARER', user: 'me@example.com', token: async () => getToken() });
 * for (const { number } of await client.list()) {
 *   const message = await client.retrieve(number);
 *   await pipeline(message, createWriteStream(`${number}.eml`));
 * }
 * await client.quit();
 * ```
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { isPopgateError, Pop3Error } from '../errors.ts';
import { type Pop3Capabilities, parseCapabilities } from '../protocol/capabilities.ts';
import { serializeCommand } from '../protocol/command.ts';
import {
  parseScanListing,
  parseStat,
  parseUniqueIdListing,
  type ScanListing,
  type UniqueIdListing,
} from '../protocol/multiline.ts';
import type { Pop3StatusResponse } from '../protocol/response.ts';
import { Connection } from './connection.ts';
import { connectChannel } from './diagnostics.ts';
import type { BodyResult, JobKind, MultiResult } from './job.ts';
import { type AuthenticateOptions, passwordLogin, saslLogin } from './login.ts';
import { checkNumber } from './message-number.ts';
import { type Pop3ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.ts';
import { type RetrievedMessage, retrieveInWindow } from './retrieval.ts';
import { openSocket, sniffImplicitTls, upgradeSocket } from './transport.ts';

export type { AuthenticateOptions, TokenProvider } from './login.ts';
export type { RetrievedMessage } from './retrieval.ts';

export type Pop3ClientState = 'new' | 'connecting' | 'authorization' | 'transaction' | 'closed';

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export class Pop3Client extends EventEmitter {
  readonly #options: ResolvedClientOptions;
  #state: Pop3ClientState = 'new';
  #conn: Connection | undefined;
  #caps: Pop3Capabilities | undefined;
  #secure = false;
  #greeting = '';
  readonly #sizes = new Map<number, number>();

  /** Validates `options` (unknown keys and bad values throw ConfigError) and freezes a copy. */
  constructor(options: Pop3ClientOptions) {
    super();
    this.#options = resolveClientOptions(options);
    this.#options.signal?.addEventListener(
      'abort',
      () => this.#conn?.fail(new Pop3Error('ERR_POP3_ABORTED', 'the client was aborted through its signal')),
      { once: true },
    );
  }

  get state(): Pop3ClientState {
    return this.#state;
  }
  /** CAPA as of the last read (after TLS, and again after login). */
  get capabilities(): Pop3Capabilities | undefined {
    return this.#caps;
  }
  /** True when the connection runs over TLS with a verified certificate. */
  get secure(): boolean {
    return this.#secure;
  }
  /** The server greeting text (capped). */
  get greeting(): string {
    return this.#greeting;
  }

  /**
   * Connects, reads the greeting, upgrades with STLS when `tls: 'starttls'` (RFC 2595 §4; bytes
   * injected before the handshake fail closed), then reads CAPA (RFC 2449 §5) over TLS.
   */
  async connect(options: CallOptions = {}): Promise<Pop3Capabilities> {
    if (this.#state !== 'new')
      throw new Pop3Error('ERR_POP3_STATE', 'connect() may be called once per client');
    this.#state = 'connecting';
    const o = this.#options;
    const signal =
      options.signal && o.signal ? AbortSignal.any([options.signal, o.signal]) : (options.signal ?? o.signal);
    try {
      const socket = await openSocket(o, signal);
      this.#secure = o.tls === 'implicit';
      this.#publishConnect('tcp');
      const conn = new Connection(
        {
          host: o.host,
          port: o.port,
          limits: o.limits,
          timeouts: o.timeouts,
          logger: o.logger,
          sizeCheck: o.sizeCheck,
        },
        (err) => this.#onClosed(err),
      );
      this.#conn = conn;
      conn.attach(socket);
      if (o.signal?.aborted) conn.fail(new Pop3Error('ERR_POP3_ABORTED', 'the client was aborted'));
      const sniffer = o.tls === 'implicit' ? undefined : sniffImplicitTls(o, (err) => conn.fail(err));
      try {
        const greeting = (await conn.send({
          verb: 'greeting',
          line: undefined,
          logLine: '',
          kind: 'status',
          signal,
        })) as Pop3StatusResponse;
        this.#greeting = greeting.text;
      } catch (err) {
        if (isPopgateError(err, 'ERR_POP3_ERR_RESPONSE')) {
          throw new Pop3Error(
            'ERR_POP3_GREETING',
            'the server greeting was -ERR; the server refuses sessions now',
            {
              serverText: (err as Pop3Error).serverText ?? '',
            },
          );
        }
        throw err;
      } finally {
        sniffer?.stop();
      }
      if (o.tls === 'starttls') await this.#startTls(conn, signal);
      await this.#readCapabilities(signal);
      this.#state = 'authorization';
      this.#publishConnect('ready');
      return this.#caps!;
    } catch (err) {
      this.#conn?.fail(err instanceof Pop3Error ? err : new Pop3Error('ERR_POP3_CONNECT', 'connect failed'));
      this.#state = 'closed';
      throw err;
    }
  }

  async #startTls(conn: Connection, signal: AbortSignal | undefined): Promise<void> {
    const before = await this.#readCapabilities(signal);
    if (before.raw.length > 0 && !before.stls) {
      throw new Pop3Error(
        'ERR_POP3_STLS_UNSUPPORTED',
        'the server does not offer STLS; use tls: "implicit" (port 995)',
      );
    }
    try {
      await conn.send({
        verb: 'STLS',
        line: serializeCommand('STLS'),
        logLine: 'STLS',
        kind: 'status',
        barrier: true,
        upgrade: true,
        signal,
      });
    } catch (err) {
      if (isPopgateError(err, 'ERR_POP3_ERR_RESPONSE')) {
        throw new Pop3Error(
          'ERR_POP3_STLS_UNSUPPORTED',
          'the server refused STLS; use tls: "implicit" (port 995)',
          {
            serverText: (err as Pop3Error).serverText ?? '',
          },
        );
      }
      throw err;
    }
    const tlsSocket = await upgradeSocket(conn.takeSocketForUpgrade(), this.#options, signal);
    conn.attach(tlsSocket);
    this.#secure = true;
    this.#caps = undefined; // RFC 2595 §4: forget what was learnt before TLS.
    this.#publishConnect('tls');
  }

  async #readCapabilities(signal?: AbortSignal): Promise<Pop3Capabilities> {
    try {
      const { lines } = (await this.#send('CAPA', [], 'multi', { signal })) as MultiResult;
      this.#caps = parseCapabilities(lines);
    } catch (err) {
      if (!isPopgateError(err, 'ERR_POP3_ERR_RESPONSE')) throw err;
      this.#caps = parseCapabilities([]); // a pre-RFC 2449 server
    }
    this.#conn!.pipelining = this.#caps.pipelining;
    return this.#caps;
  }

  /** Re-reads CAPA (RFC 2449 §5). */
  async capa(options: CallOptions = {}): Promise<Pop3Capabilities> {
    this.#assertState('authorization', 'transaction');
    return this.#readCapabilities(options.signal);
  }

  /**
   * SASL login (RFC 5034) with XOAUTH2 or OAUTHBEARER (RFC 7628). The token is written only over
   * verified TLS (or with `tls: 'none-loopback-insecure'`). With a provider, an `[AUTH]` refusal
   * asks it once for a fresh token (`forceRefresh: true`) and retries once.
   */
  async authenticate(options: AuthenticateOptions): Promise<void> {
    this.#assertState('authorization');
    this.#assertSecure();
    await saslLogin(this.#conn!, this.#options, this.#caps, options);
    await this.#enterTransaction(options.signal);
  }

  /** USER/PASS (RFC 1939 §7); only with `allowPasswordLogin: true`, and only over TLS. */
  async loginWithPassword(options: { user: string; password: string; signal?: AbortSignal }): Promise<void> {
    if (!this.#options.allowPasswordLogin) {
      throw new Pop3Error(
        'ERR_POP3_UNSUPPORTED',
        'USER/PASS is disabled; pass allowPasswordLogin: true to enable it',
      );
    }
    this.#assertState('authorization');
    this.#assertSecure();
    await passwordLogin(this.#conn!, options);
    await this.#enterTransaction(options.signal);
  }

  async #enterTransaction(signal: AbortSignal | undefined): Promise<void> {
    this.#state = 'transaction';
    await this.#readCapabilities(signal); // RFC 2449 §5: capabilities may change after login
  }

  /** STAT (RFC 1939 §5). */
  async stat(options: CallOptions = {}): Promise<{ count: number; size: number }> {
    this.#assertState('transaction');
    const status = (await this.#send('STAT', [], 'status', options)) as Pop3StatusResponse;
    return parseStat(status.text);
  }

  /** LIST (RFC 1939 §5): every message's size. Sizes are remembered to check RETR. */
  async list(options: CallOptions = {}): Promise<ScanListing[]> {
    this.#assertState('transaction');
    const { lines } = (await this.#send('LIST', [], 'multi', options)) as MultiResult;
    const out = lines.map(parseScanListing);
    for (const item of out) this.#sizes.set(item.number, item.size);
    return out;
  }

  /** LIST n: one message's size. */
  async listOne(n: number, options: CallOptions = {}): Promise<ScanListing> {
    this.#assertState('transaction');
    const status = (await this.#send('LIST', [checkNumber(n)], 'status', options)) as Pop3StatusResponse;
    const item = parseScanListing(status.text);
    this.#sizes.set(item.number, item.size);
    return item;
  }

  /** UIDL (RFC 1939 §7): every message's unique id. */
  async uidl(options: CallOptions = {}): Promise<UniqueIdListing[]> {
    this.#assertState('transaction');
    const { lines } = (await this.#send('UIDL', [], 'multi', options)) as MultiResult;
    return lines.map(parseUniqueIdListing);
  }

  /** UIDL n (RFC 1939 §7): one message's unique id. */
  async uidlOne(n: number, options: CallOptions = {}): Promise<UniqueIdListing> {
    this.#assertState('transaction');
    const status = (await this.#send('UIDL', [checkNumber(n)], 'status', options)) as Pop3StatusResponse;
    return parseUniqueIdListing(status.text);
  }

  /**
   * RETR (RFC 1939 §5): resolves when the server says +OK with a Readable of the message,
   * dot-unstuffed, streamed with backpressure. Its octets are checked against LIST (or the
   * `+OK n octets` the server sends); a mismatch fails the stream with ERR_POP3_SIZE_MISMATCH.
   * Consume (or destroy) each stream: later answers wait behind it on the wire.
   */
  async retrieve(n: number, options: CallOptions = {}): Promise<Readable> {
    this.#assertState('transaction');
    const arg = checkNumber(n);
    const { stream } = (await this.#send('RETR', [arg], 'body', options, this.#sizes.get(n))) as BodyResult;
    return stream;
  }

  /**
   * Pipelined RETR of many messages: commands are queued a window ahead of the consumer and
   * written as fast as the pipeline window allows (CAPA PIPELINING; one at a time otherwise),
   * so memory does not grow with the number of messages. Yields the messages
   * in order; consume each stream before asking for the next. Leaving the loop early aborts the
   * rest without closing the connection.
   */
  retrieveMany(numbers: Iterable<number>, options: CallOptions = {}): AsyncGenerator<RetrievedMessage> {
    const begin = () => {
      this.#assertState('transaction');
      return this.#conn!;
    };
    return retrieveInWindow(begin, numbers, this.#sizes, this.#options.limits, options);
  }

  /** TOP n lines (RFC 1939 §7): headers and the first `lines` body lines, as a stream. */
  async top(n: number, lines: number, options: CallOptions = {}): Promise<Readable> {
    this.#assertState('transaction');
    if (!Number.isSafeInteger(lines) || lines < 0) {
      throw new Pop3Error('ERR_POP3_INVALID_ARGUMENT', 'TOP line count must be a non-negative integer');
    }
    const { stream } = (await this.#send(
      'TOP',
      [checkNumber(n), String(lines)],
      'body',
      options,
    )) as BodyResult;
    return stream;
  }

  /** DELE (RFC 1939 §5): marks a message; the server removes it only after QUIT. */
  async delete(n: number, options: CallOptions = {}): Promise<void> {
    this.#assertState('transaction');
    await this.#send('DELE', [checkNumber(n)], 'status', options);
  }

  /** RSET (RFC 1939 §5): unmarks every deleted message. */
  async reset(options: CallOptions = {}): Promise<void> {
    this.#assertState('transaction');
    await this.#send('RSET', [], 'status', options);
  }

  /** NOOP (RFC 1939 §5). */
  async noop(options: CallOptions = {}): Promise<void> {
    this.#assertState('transaction');
    await this.#send('NOOP', [], 'status', options);
  }

  /** QUIT (RFC 1939 §6): in TRANSACTION the server commits deletions (UPDATE state), then closes. */
  async quit(options: CallOptions = {}): Promise<void> {
    if (this.#state === 'closed' || !this.#conn) return;
    this.#assertState('authorization', 'transaction');
    const conn = this.#conn;
    await conn.send({
      verb: 'QUIT',
      line: serializeCommand('QUIT'),
      logLine: 'QUIT',
      kind: 'status',
      barrier: true,
      closes: true,
      signal: options.signal,
    });
    conn.end();
  }

  /** Closes at once without QUIT: the server deletes nothing (RFC 1939 §6). */
  close(): void {
    this.#conn?.fail(new Pop3Error('ERR_POP3_CLOSED', 'the connection was closed by the client'));
    this.#state = 'closed';
  }

  #send(
    verb: string,
    args: string[],
    kind: JobKind,
    options: CallOptions,
    expectedSize?: number,
  ): Promise<unknown> {
    const conn = this.#conn;
    if (!conn) return Promise.reject(new Pop3Error('ERR_POP3_STATE', 'not connected'));
    const line = serializeCommand(verb, args, this.#options.limits.maxCommandLength);
    return conn.send({
      verb,
      line,
      logLine: [verb, ...args].join(' '),
      kind,
      signal: options.signal,
      expectedSize,
    });
  }

  #assertState(...allowed: Pop3ClientState[]): void {
    if (!allowed.includes(this.#state)) {
      throw new Pop3Error(
        'ERR_POP3_STATE',
        `this call needs state ${allowed.join(' or ')}; the client is ${this.#state}`,
      );
    }
  }

  #assertSecure(): void {
    if (!this.#secure && this.#options.tls !== 'none-loopback-insecure') {
      throw new Pop3Error('ERR_POP3_TLS_REQUIRED', 'refusing to send a credential without verified TLS');
    }
  }

  #publishConnect(phase: 'tcp' | 'tls' | 'ready'): void {
    const { host, port, tls } = this.#options;
    this.#options.logger.debug({ host, port, tls, phase }, 'pop3 connect');
    if (connectChannel.hasSubscribers) connectChannel.publish({ host, port, tls, phase });
  }

  #onClosed(err: Pop3Error): void {
    this.#state = 'closed';
    this.emit('close', err);
  }
}
