// Scripted POP3 servers on 127.0.0.1:0 (or [::1]:0) for the client's edge cases (architecture.md R16): each
// connection runs a script that reads command lines and writes whatever bytes the test wants,
// including broken ones (STLS injection, drops, wrong sizes, huge lines, one-byte drip).
import net from 'node:net';
import tls from 'node:tls';

export interface FakeSession {
  /** Writes raw bytes to the client. */
  write(data: string | Buffer): void;
  /** The next command line from the client (CRLF stripped); rejects if the client closed. */
  readLine(): Promise<string>;
  /** Lines received so far but not yet read. */
  readonly pendingLines: number;
  /** Completes an STLS upgrade with the server certificate (after writing +OK yourself). */
  startTls(): Promise<void>;
  /** Whether the session is on TLS now. */
  readonly secure: boolean;
  /** The server name (SNI) the client sent in the TLS handshake; false when none. */
  readonly servername: string | false;
  /** Ends gracefully / drops abruptly. */
  end(): void;
  destroy(): void;
}

export type FakeScript = (session: FakeSession) => Promise<void>;

export interface FakeServerOptions {
  /** Key and certificate for implicit TLS and STLS. */
  tls?: { key: string; cert: string };
  /** Implicit TLS from the first byte. */
  implicitTls?: boolean;
  /** The loopback address to listen on; default 127.0.0.1. */
  listenHost?: '127.0.0.1' | '::1';
  script: FakeScript;
}

export interface FakePop3Server {
  readonly host: '127.0.0.1' | '::1';
  readonly port: number;
  /** Every line received by every session, in order, tagged `plain:` or `tls:`. */
  readonly received: string[];
  /** Errors thrown by scripts (a test can assert there were none). */
  readonly scriptErrors: unknown[];
  close(): Promise<void>;
}

export async function startFakePop3Server(options: FakeServerOptions): Promise<FakePop3Server> {
  const received: string[] = [];
  const scriptErrors: unknown[] = [];
  const sockets = new Set<net.Socket>();

  const handle = (raw: net.Socket) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    let socket: net.Socket = raw;
    let buffer = '';
    const lines: string[] = [];
    let waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | undefined;
    let closed = false;
    let secure = options.implicitTls === true;
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let i = buffer.indexOf('\n');
      while (i !== -1) {
        const line = buffer.slice(0, i).replace(/\r$/, '');
        buffer = buffer.slice(i + 1);
        received.push(`${secure ? 'tls' : 'plain'}:${line}`);
        if (waiter) {
          const w = waiter;
          waiter = undefined;
          w.resolve(line);
        } else lines.push(line);
        i = buffer.indexOf('\n');
      }
    };
    const onClose = () => {
      closed = true;
      waiter?.reject(new Error('client closed'));
      waiter = undefined;
    };
    const attach = (s: net.Socket) => {
      s.on('data', onData);
      s.on('close', onClose);
      s.on('error', () => {});
    };
    attach(socket);
    const session: FakeSession = {
      write: (data) => {
        if (!socket.destroyed) socket.write(data);
      },
      readLine: () => {
        const next = lines.shift();
        if (next !== undefined) return Promise.resolve(next);
        if (closed) return Promise.reject(new Error('client closed'));
        return new Promise((resolve, reject) => {
          waiter = { resolve, reject };
        });
      },
      get pendingLines() {
        return lines.length;
      },
      get secure() {
        return secure;
      },
      get servername() {
        return (socket instanceof tls.TLSSocket ? socket.servername : false) ?? false;
      },
      startTls: async () => {
        if (!options.tls) throw new Error('no certificate configured');
        socket.off('data', onData);
        socket.off('close', onClose);
        buffer = '';
        const upgraded = new tls.TLSSocket(socket, {
          isServer: true,
          key: options.tls.key,
          cert: options.tls.cert,
        });
        socket = upgraded;
        secure = true;
        attach(upgraded);
        await new Promise<void>((resolve, reject) => {
          upgraded.once('secure', () => resolve());
          upgraded.once('error', reject);
          upgraded.once('close', () => reject(new Error('closed during handshake')));
        });
      },
      end: () => socket.end(),
      destroy: () => socket.destroy(),
    };
    options.script(session).catch((err) => {
      if (!closed) scriptErrors.push(err);
      socket.destroy();
    });
  };

  const server =
    options.implicitTls && options.tls
      ? tls.createServer({ key: options.tls.key, cert: options.tls.cert }, handle)
      : net.createServer(handle);
  server.on('tlsClientError', () => {});
  const host = options.listenHost ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address() as net.AddressInfo;
  return {
    host,
    port: address.port,
    received,
    scriptErrors,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Dot-stuffs a message the way a server must (CRLF line ends, `.CRLF` terminator). */
export function stuff(message: string): string {
  const body = message.replace(/\r?\n/g, '\r\n');
  const withEol = body === '' || body.endsWith('\r\n') ? body : `${body}\r\n`;
  return `${withEol.replace(/^\./gm, '..')}.\r\n`;
}

export interface MaildropScriptOptions {
  messages: readonly string[];
  capa?: readonly string[];
  greeting?: string;
  /** Per-verb override: return true when it answered the command itself. */
  on?: (verb: string, args: string[], session: FakeSession) => Promise<boolean> | boolean;
  /** Accept any AUTH/USER/PASS (default true). */
  acceptAuth?: boolean;
}

export const DEFAULT_CAPA = [
  'TOP',
  'UIDL',
  'RESP-CODES',
  'AUTH-RESP-CODE',
  'PIPELINING',
  'SASL XOAUTH2 OAUTHBEARER',
];

/** A well-behaved server over `messages`, with hooks for the edge cases. */
export function maildropScript(opts: MaildropScriptOptions): FakeScript {
  return async (s) => {
    const sizes = opts.messages.map((m) => {
      const wire = m.replace(/\r?\n/g, '\r\n');
      return Buffer.byteLength(wire === '' || wire.endsWith('\r\n') ? wire : `${wire}\r\n`, 'latin1');
    });
    s.write(`+OK ${opts.greeting ?? 'fake ready'}\r\n`);
    for (let i = 0; i < 10_000; i++) {
      const line = await s.readLine();
      const [rawVerb = '', ...args] = line.split(' ');
      const verb = rawVerb.toUpperCase();
      if (opts.on && (await opts.on(verb, args, s))) continue;
      const n = Number(args[0]);
      const exists = Number.isInteger(n) && n >= 1 && n <= opts.messages.length;
      switch (verb) {
        case 'CAPA':
          s.write(`+OK\r\n${(opts.capa ?? DEFAULT_CAPA).join('\r\n')}\r\n.\r\n`);
          break;
        case 'AUTH':
          if (args.length === 1) {
            s.write('+ \r\n');
            await s.readLine();
          }
          s.write(opts.acceptAuth === false ? '-ERR [AUTH] no\r\n' : '+OK logged in\r\n');
          break;
        case 'USER':
          s.write('+OK\r\n');
          break;
        case 'PASS':
          s.write(opts.acceptAuth === false ? '-ERR [AUTH] no\r\n' : '+OK logged in\r\n');
          break;
        case 'STAT':
          s.write(`+OK ${opts.messages.length} ${sizes.reduce((a, b) => a + b, 0)}\r\n`);
          break;
        case 'LIST':
          s.write(`+OK\r\n${sizes.map((sz, i) => `${i + 1} ${sz}\r\n`).join('')}.\r\n`);
          break;
        case 'UIDL':
          s.write(`+OK\r\n${sizes.map((_, i) => `${i + 1} uid-${i + 1}\r\n`).join('')}.\r\n`);
          break;
        case 'RETR':
          if (!exists) s.write('-ERR no such message\r\n');
          else s.write(`+OK ${sizes[n - 1]} octets\r\n${stuff(opts.messages[n - 1]!)}`);
          break;
        case 'TOP': {
          if (!exists) {
            s.write('-ERR no such message\r\n');
            break;
          }
          const msg = opts.messages[n - 1]!.replace(/\r?\n/g, '\n');
          const split = msg.indexOf('\n\n');
          const head = split === -1 ? msg : msg.slice(0, split + 2);
          const body = split === -1 ? [] : msg.slice(split + 2).split('\n');
          s.write(`+OK\r\n${stuff(head + body.slice(0, Number(args[1])).join('\n'))}`);
          break;
        }
        case 'DELE':
        case 'RSET':
        case 'NOOP':
          s.write(exists || verb !== 'DELE' ? '+OK\r\n' : '-ERR no such message\r\n');
          break;
        case 'QUIT':
          s.write('+OK bye\r\n');
          s.end();
          return;
        default:
          s.write('-ERR unknown command\r\n');
      }
    }
  };
}

export interface HeldRetrStats {
  /** Most RETRs the server held unanswered at once. */
  maxHeld: number;
  /** RETRs answered. */
  answered: number;
}

/**
 * A well-behaved maildrop that answers RETR only while it holds at least `minHeld` unanswered
 * RETRs, or once every message has been asked for. Only a client that keeps `minHeld` RETRs in
 * flight gets answers; one that waits for each answer before the next RETR gets none (its
 * command times out). Expects each message to be retrieved once, and only RETRs meanwhile.
 */
export function heldRetrScript(
  opts: MaildropScriptOptions & { minHeld: number; stats?: HeldRetrStats },
): FakeScript {
  const held: number[] = [];
  let received = 0;
  const total = opts.messages.length;
  const stats = opts.stats ?? { maxHeld: 0, answered: 0 };
  return maildropScript({
    ...opts,
    on: (verb, args, s) => {
      if (verb !== 'RETR') return opts.on ? opts.on(verb, args, s) : false;
      if (held.length > 0 && received === total) throw new Error('more RETRs than messages');
      held.push(Number(args[0]));
      received += 1;
      stats.maxHeld = Math.max(stats.maxHeld, held.length);
      while (held.length >= opts.minHeld || (received === total && held.length > 0)) {
        const n = held.shift()!;
        const message = opts.messages[n - 1];
        if (message === undefined) {
          s.write('-ERR no such message\r\n');
          continue;
        }
        const wire = message.replace(/\r?\n/g, '\r\n');
        const size = Buffer.byteLength(wire === '' || wire.endsWith('\r\n') ? wire : `${wire}\r\n`, 'latin1');
        s.write(`+OK ${size} octets\r\n${stuff(message)}`);
        stats.answered += 1;
      }
      return true;
    },
  });
}
