// Test doubles and a raw wire client for the POP3 server tests: an in-memory MaildropStore, a
// TokenValidator over a fixed token table, and a line-level client on a plain or TLS socket.
import { connect as netConnect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { TokenValidator, ValidatedToken, ValidationContext } from '../../src/auth/types.ts';
import { StoreError, TokenValidationError } from '../../src/errors.ts';
import type { Pop3ServerOptions } from '../../src/server/options.ts';
import { createPop3Server, type Pop3Server } from '../../src/server/server.ts';
import type { MaildropSession, MaildropStore } from '../../src/store/types.ts';

export interface StoredMessage {
  uid: string;
  data: Buffer;
}

/** A MaildropStore in memory with a per-user lock; `commits` records every UPDATE. */
export class MemoryStore implements MaildropStore {
  readonly boxes = new Map<string, StoredMessage[]>();
  readonly locked = new Set<string>();
  readonly commits: { user: string; deleted: number[] }[] = [];
  failOpen: Error | undefined;
  /** Offer `readWhole` (the server's whole-message path) for messages up to this size. */
  wholeUpTo: number | undefined;
  /** Messages read so far (`read` and `readWhole`), to observe backpressure. */
  reads = 0;

  add(user: string, ...messages: string[]): void {
    const box = this.boxes.get(user) ?? [];
    for (const m of messages) box.push({ uid: `uid-${box.length + 1}-${user.length}`, data: Buffer.from(m) });
    this.boxes.set(user, box);
  }

  async open(user: string): Promise<MaildropSession> {
    if (this.failOpen) throw this.failOpen;
    if (this.locked.has(user)) throw new StoreError('ERR_STORE_LOCKED', 'locked');
    this.locked.add(user);
    const box = [...(this.boxes.get(user) ?? [])];
    let open = true;
    return {
      user,
      messages: box.map((m) => ({ uid: m.uid, size: m.data.length })),
      read: async (index) => {
        this.reads += 1;
        const m = box[index];
        if (!m) throw new StoreError('ERR_STORE_NO_SUCH_MESSAGE', 'no such message');
        // Several chunks, to exercise state carried across chunk boundaries.
        const chunks: Buffer[] = [];
        for (let i = 0; i < m.data.length; i += 7) chunks.push(m.data.subarray(i, i + 7));
        return Readable.from(chunks);
      },
      ...(this.wholeUpTo === undefined
        ? {}
        : {
            readWhole: async (index: number) => {
              this.reads += 1;
              const m = box[index];
              if (!m) throw new StoreError('ERR_STORE_NO_SUCH_MESSAGE', 'no such message');
              return m.data.length <= this.wholeUpTo! ? Buffer.from(m.data) : undefined;
            },
          }),
      commit: async (deleted) => {
        if (!open) throw new Error('session already ended');
        const gone = new Set(deleted.map((i) => box[i]!.uid));
        this.boxes.set(
          user,
          (this.boxes.get(user) ?? []).filter((m) => !gone.has(m.uid)),
        );
        this.commits.push({ user, deleted: [...deleted] });
        open = false;
        this.locked.delete(user);
        return { outcome: 'committed' as const, deleted: gone.size };
      },
      release: async () => {
        open = false;
        this.locked.delete(user);
      },
    };
  }

  async deliver(user: string, message: Readable | Uint8Array): Promise<string> {
    const data =
      message instanceof Uint8Array ? Buffer.from(message) : Buffer.concat(await message.toArray());
    this.add(user, data.toString('latin1'));
    return this.boxes.get(user)!.at(-1)!.uid;
  }

  async close(): Promise<void> {}
}

export interface TokenSpec {
  user: string;
  scopes?: string[];
  expiresInMs?: number;
  /** Throw this instead of validating. */
  error?: TokenValidationError | Error;
}

/**
 * A TokenValidator over a table `token -> spec` (users in lower case); unknown tokens are
 * invalid. Counts calls.
 */
export class TableValidator implements TokenValidator {
  readonly tokens = new Map<string, TokenSpec>();
  calls = 0;

  async validate(token: string, context: ValidationContext): Promise<ValidatedToken> {
    this.calls += 1;
    const spec = this.tokens.get(token);
    if (!spec) throw new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the access token is invalid');
    if (spec.error) throw spec.error;
    // The TokenValidator contract, as src/auth's validator keeps it: the read scope is needed,
    // and the SASL user must equal the token's (email-like) user, compared case-insensitively.
    const scopes = new Set(spec.scopes ?? ['pop3', 'pop3.delete']);
    if (!scopes.has('pop3')) {
      throw new TokenValidationError('ERR_AUTH_SCOPE', 'the token lacks the scope needed to read mail', {
        requiredScope: 'pop3',
      });
    }
    if (context.user !== undefined && context.user.toLowerCase() !== spec.user) {
      throw new TokenValidationError('ERR_AUTH_USER_MISMATCH', 'user mismatch');
    }
    return {
      user: spec.user,
      issuer: 'https://issuer.test',
      subject: `sub-${spec.user}`,
      clientId: 'client-1',
      scopes,
      expiresAt: spec.expiresInMs === undefined ? undefined : new Date(Date.now() + spec.expiresInMs),
      rights: { read: scopes.has('pop3'), delete: scopes.has('pop3.delete') },
      method: 'jwt',
    };
  }

  challenge(): { scope?: string; openidConfiguration?: string } {
    return { scope: 'pop3', openidConfiguration: 'https://issuer.test/.well-known/openid-configuration' };
  }
}

export const xoauth2 = (user: string, token: string): string =>
  Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
export const oauthbearer = (user: string | undefined, token: string): string =>
  Buffer.from(`n,${user ? `a=${user}` : ''},\x01auth=Bearer ${token}\x01\x01`).toString('base64');

/** A line-level POP3 client for tests: send raw bytes, read lines and multi-line answers. */
export class WireClient {
  readonly socket: Socket;
  /** Received text; `#pos` is where the unread part starts (no re-slicing per line). */
  #buffer = '';
  #pos = 0;
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer = this.#pos === 0 ? this.#buffer + chunk : this.#buffer.slice(this.#pos) + chunk;
      this.#pos = 0;
      this.#notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, options: { tls?: { ca: string } } = {}): Promise<WireClient> {
    const socket = options.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: options.tls.ca, servername: 'localhost' })
      : netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new WireClient(socket);
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  async #waitFor<T>(take: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      if (this.closed)
        throw new Error(`connection closed; unread: ${JSON.stringify(this.unread.slice(0, 200))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; unread: ${JSON.stringify(this.unread.slice(0, 200))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** Sends `line` + CRLF and returns the first response line. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.line();
  }

  line(timeoutMs?: number): Promise<string> {
    return this.#waitFor(() => {
      const i = this.#buffer.indexOf('\r\n', this.#pos);
      if (i === -1) return undefined;
      const line = this.#buffer.slice(this.#pos, i);
      this.#pos = i + 2;
      return line;
    }, timeoutMs);
  }

  /** Reads a multi-line body after its status line: lines until `.`, dot-unstuffed. */
  async body(timeoutMs?: number): Promise<string[]> {
    const lines: string[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      const line = await this.line(timeoutMs);
      if (line === '.') return lines;
      lines.push(line.startsWith('.') ? line.slice(1) : line);
    }
    throw new Error('body too long');
  }

  /** Sends a command expecting a multi-line answer; returns [status, lines]. */
  async multi(line: string): Promise<[string, string[]]> {
    const status = await this.command(line);
    if (!status.startsWith('+OK')) return [status, []];
    return [status, await this.body()];
  }

  /** Resolves when the server closed the connection; returns what was unread. */
  async waitClosed(timeoutMs = 5000): Promise<string> {
    await this.#waitFor(() => (this.closed ? true : undefined), timeoutMs).catch((error) => {
      if (!this.closed) throw error;
    });
    return this.unread;
  }

  get unread(): string {
    return this.#buffer.slice(this.#pos);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface TestServer {
  server: Pop3Server;
  store: MemoryStore;
  validator: TableValidator;
  port: number;
  client(): Promise<WireClient>;
  /** A client logged in as `user` (token `tok-<user>`). */
  login(user?: string): Promise<WireClient>;
  close(): Promise<void>;
}

/** A plaintext loopback server (allowPlaintextLoopback) with an in-memory store. */
export async function startTestServer(
  overrides: Partial<Pop3ServerOptions> = {},
  setup?: (store: MemoryStore, validator: TableValidator) => void,
): Promise<TestServer> {
  const store = new MemoryStore();
  const validator = new TableValidator();
  validator.tokens.set('tok-alice', { user: 'alice@example.test' });
  validator.tokens.set('tok-bob', { user: 'bob@example.test', scopes: ['pop3'] });
  store.add(
    'alice@example.test',
    'Subject: one\r\n\r\nHello\r\n',
    'Subject: two\r\n\r\n.dot line\r\nbye\r\n',
  );
  setup?.(store, validator);
  const server = createPop3Server({
    listen: ['pop3://127.0.0.1:0'],
    allowPlaintextLoopback: true,
    validator,
    store,
    ...overrides,
    limits: { failedLoginDelayMs: 0, ...overrides.limits },
  });
  const [address] = await server.listen();
  const port = address!.port;
  const clients: WireClient[] = [];
  const client = async () => {
    const c = await WireClient.connect(port);
    clients.push(c);
    const greeting = await c.line();
    if (!greeting.startsWith('+OK')) throw new Error(`bad greeting ${greeting}`);
    return c;
  };
  return {
    server,
    store,
    validator,
    port,
    client,
    async login(user = 'alice@example.test') {
      const c = await client();
      const local = user.split('@')[0];
      const answer = await c.command(`AUTH XOAUTH2 ${xoauth2(user, `tok-${local}`)}`);
      if (!answer.startsWith('+OK')) throw new Error(`login failed: ${answer}`);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close({ graceMs: 0 });
    },
  };
}

/**
 * A raw pipelined POP3 reader (the wire limit): after login, sends UIDL and RETR 1..count in
 * one write and scans the answers. With `keep`, returns each RETR body (stuffed, as on the wire).
 */
export async function pipelinedFetch(
  socket: Socket,
  count: number,
  options: { keep?: boolean } = {},
): Promise<{ uidl: string[]; bodies: Buffer[]; bytes: number }> {
  const commands = ['UIDL'];
  for (let i = 1; i <= count; i++) commands.push(`RETR ${i}`);
  const bodies: Buffer[] = [];
  let uidl: string[] = [];
  let bytes = 0;
  let pending: Buffer = Buffer.alloc(0);
  let index = 0; // which answer we are reading
  let inBody = false;
  let bodyParts: Buffer[] = [];
  const TERM = Buffer.from('\r\n.\r\n');
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        if (!inBody) {
          const eol = pending.indexOf('\r\n');
          if (eol === -1) return;
          const status = pending.subarray(0, eol).toString('latin1');
          if (!status.startsWith('+OK')) {
            cleanup();
            reject(new Error(`answer ${index}: ${status}`));
            return;
          }
          // Keep the CRLF so that the terminator search also finds an empty body.
          pending = pending.subarray(eol);
          inBody = true;
          bodyParts = [];
        }
        const end = pending.indexOf(TERM);
        if (end === -1) {
          // Keep the last 4 bytes: the terminator may straddle chunks.
          if (pending.length > 4) {
            if (options.keep || index === 0) bodyParts.push(pending.subarray(0, pending.length - 4));
            pending = pending.subarray(pending.length - 4);
          }
          return;
        }
        if (options.keep || index === 0) bodyParts.push(pending.subarray(0, end + 2));
        pending = pending.subarray(end + TERM.length);
        inBody = false;
        const body = Buffer.concat(bodyParts).subarray(2); // drop the status line's CRLF
        if (index === 0) uidl = body.toString('latin1').split('\r\n').filter(Boolean);
        else if (options.keep) bodies.push(body);
        index += 1;
        if (index === commands.length) {
          cleanup();
          resolve({ uidl, bodies, bytes });
          return;
        }
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`connection closed after ${index} answers`));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(commands.map((c) => `${c}\r\n`).join(''));
  });
}

/** Connects (TLS when `ca` is given), reads the greeting, sends `authLine`, expects `+OK`. */
export async function rawLogin(port: number, authLine: string, ca?: string): Promise<Socket> {
  const socket = ca
    ? tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
    : netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let buffer = '';
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const i = buffer.indexOf('\r\n');
        if (i === -1) return false;
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(line);
        return true;
      };
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        check();
      };
      if (!check()) {
        socket.on('data', onData);
        socket.once('error', reject);
      }
    });
  const greeting = await next();
  if (!greeting.startsWith('+OK')) throw new Error(`greeting: ${greeting}`);
  socket.write(`${authLine}\r\n`);
  const answer = await next();
  if (!answer.startsWith('+OK')) throw new Error(`login refused: ${answer.slice(0, 200)}`);
  return socket;
}
