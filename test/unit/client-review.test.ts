// Review tests for the client's paused-mode reading, windowed retrieveMany and BodyStream hand-off:
// edge cases where a stream consumer, an abort or a server misbehaves mid-body. Scripted servers
// on loopback; no time is asserted (a hang fails through the test's own timeout).
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { mock, type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { Pop3Client, type Pop3ClientOptions } from '../../src/client/index.ts';
import { isPopgateError } from '../../src/errors.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { loggedInOnFakeServer } from '../helpers/fake-client.ts';
import { maildropScript } from '../helpers/fake-pop3-server.ts';

const HANG = { timeout: 20_000 };

const loggedIn = (
  t: TestContext,
  opts: Parameters<typeof maildropScript>[0],
  extra: Partial<Pop3ClientOptions> = {},
) =>
  loggedInOnFakeServer(t, maildropScript(opts), {
    timeouts: { command: 10_000, idle: 10_000, greeting: 10_000 },
    ...extra,
  });

/** A message of about `kib` KiB with a recognisable first line. */
const big = (i: number, kib: number) =>
  `Subject: ${i}\r\n\r\n${`${String(i % 10).repeat(1022)}\r\n`.repeat(kib)}`;

const slowSink = (out: Buffer[]) =>
  new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _e, cb) {
      out.push(chunk);
      setImmediate(cb);
    },
  });

test(
  'leaving retrieveMany early with large messages already answered keeps the session usable',
  HANG,
  async (t) => {
    // Messages over the body stream's 256 KiB mark: a message answered but never yielded fills its
    // stream and pauses the connection; it must be discarded when the loop is left.
    const messages = Array.from({ length: 4 }, (_, i) => big(i + 1, 600));
    const { client } = await loggedIn(t, { messages });
    await client.list();
    for await (const { stream } of client.retrieveMany([1, 2, 3, 4])) {
      assert.equal(await text(stream), messages[0]);
      // Let the next answer's +OK arrive and its body fill its stream.
      await new Promise((r) => setTimeout(r, 100));
      break;
    }
    await client.noop();
    assert.equal(await text(await client.retrieve(4)), messages[3]);
  },
);

test(
  'an abort of retrieveMany mid-way discards answered messages and the session goes on',
  HANG,
  async (t) => {
    const messages = Array.from({ length: 4 }, (_, i) => big(i + 1, 600));
    const { client } = await loggedIn(t, { messages });
    await client.list();
    const controller = new AbortController();
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const { number, stream } of client.retrieveMany([1, 2, 3, 4], {
          signal: controller.signal,
        })) {
          got.push(number);
          assert.equal(await text(stream), messages[number - 1]);
          if (number === 1) {
            await new Promise((r) => setTimeout(r, 100));
            controller.abort();
          }
        }
      })(),
      (e) => isPopgateError(e, 'ERR_POP3_ABORTED'),
    );
    assert.deepEqual(got, [1]);
    await client.noop();
    assert.equal(await text(await client.retrieve(3)), messages[2]);
  },
);

test(
  'pipe into a slow Writable: the connection pauses and resumes, every byte arrives once',
  HANG,
  async (t) => {
    const messages = [big(1, 2048), big(2, 700), 'small\r\n'];
    const { client } = await loggedIn(t, { messages });
    await client.list();
    let i = 0;
    for await (const { stream } of client.retrieveMany([1, 2, 3])) {
      const out: Buffer[] = [];
      await pipeline(stream, slowSink(out));
      assert.equal(Buffer.concat(out).toString('latin1'), messages[i]);
      i += 1;
    }
    assert.equal(i, 3);
    await client.noop();
  },
);

test('a consumer that mixes read() and async iteration gets every byte once, in order', HANG, async (t) => {
  const messages = [big(1, 900), 'next\r\n'];
  const { client } = await loggedIn(t, { messages });
  await client.list();
  const stream = await client.retrieve(1);
  const parts: Buffer[] = [];
  // Paused-mode read() first (waiting on 'readable'), then a loop that alternates.
  for (let k = 0; k < 3; k++) {
    let chunk = stream.read(5000) as Buffer | null;
    while (chunk === null) {
      await new Promise((r) => stream.once('readable', r));
      chunk = stream.read(5000) as Buffer | null;
    }
    parts.push(chunk);
  }
  let turn = 0;
  for await (const chunk of stream) {
    parts.push(chunk as Buffer);
    if (turn++ % 2 === 0) {
      const extra = stream.read() as Buffer | null;
      if (extra) parts.push(extra);
    }
  }
  assert.equal(Buffer.concat(parts).toString('latin1'), messages[0]);
  assert.equal(await text(await client.retrieve(2)), 'next\r\n');
});

test(
  'setEncoding applies to async iteration: strings, with characters split across chunks intact',
  HANG,
  async (t) => {
    // 3-octet characters over a body much larger than one chunk: some character straddles chunks.
    const body = `Subject: utf8\r\n\r\n${`${'€'.repeat(340)}\r\n`.repeat(600)}`;
    const wire = Buffer.from(body, 'utf8').toString('latin1');
    const { client } = await loggedIn(t, {
      messages: ['x\r\n'],
      on: (verb, _a, s) => {
        if (verb !== 'RETR') return false;
        s.write(Buffer.from(`+OK\r\n${wire}.\r\n`, 'latin1'));
        return true;
      },
    });
    const stream = await client.retrieve(1);
    stream.setEncoding('utf8');
    let out = '';
    let strings = true;
    for await (const chunk of stream) {
      if (typeof chunk !== 'string') strings = false;
      out += chunk;
    }
    assert.equal(strings, true, 'chunks are strings after setEncoding');
    assert.equal(out, body);
  },
);

test(
  'destroying a body stream mid-message discards the rest and the next answer is read in step',
  HANG,
  async (t) => {
    const messages = [big(1, 2048), 'second\r\n'];
    const { client } = await loggedIn(t, { messages });
    await client.list();
    const stream = await client.retrieve(1);
    const queued = client.retrieve(2);
    const noop = client.noop();
    for await (const _ of stream) break; // one chunk, then destroy
    assert.equal(stream.destroyed, true);
    assert.equal(await text(await queued), 'second\r\n');
    await noop;
    await client.noop();
  },
);

test(
  'a server that closes while the consumer has paused the connection fails the stream',
  HANG,
  async (t) => {
    const { client } = await loggedIn(t, {
      messages: ['x\r\n'],
      on: (verb, _a, s) => {
        if (verb !== 'RETR') return false;
        s.write(`+OK 9000000 octets\r\n${'y'.repeat(1022)}\r\n`.repeat(1));
        s.write(`${'y'.repeat(1022)}\r\n`.repeat(3000));
        s.end();
        return true;
      },
    });
    const stream = await client.retrieve(1);
    const queued = client.noop();
    queued.catch(() => {});
    await new Promise((r) => setTimeout(r, 200)); // the connection pauses on a full stream
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) n += (chunk as Buffer).length;
      })(),
      (e) => isPopgateError(e, 'ERR_POP3_CLOSED'),
    );
    assert.equal(n, 3001 * 1024, 'every byte sent before the close was delivered');
    await assert.rejects(queued, (e) => isPopgateError(e, 'ERR_POP3_CLOSED'));
    assert.equal(client.state, 'closed');
  },
);

test('retrieveMany over duplicates and a number LIST did not return', HANG, async (t) => {
  const messages = ['one\r\n', 'two\r\n'];
  const { client } = await loggedIn(t, { messages });
  await client.list();
  const got: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const { number, stream } of client.retrieveMany([2, 2, 1, 9, 1])) {
        got.push(`${number}:${await text(stream)}`);
      }
    })(),
    (e) => isPopgateError(e, 'ERR_POP3_ERR_RESPONSE'),
  );
  assert.deepEqual(got, ['2:two\r\n', '2:two\r\n', '1:one\r\n']);
  assert.equal(await text(await client.retrieve(1)), 'one\r\n');
});

/** Captures the sockets the client opens. */
function captureSockets(t: TestContext): net.Socket[] {
  const sockets: net.Socket[] = [];
  const connect = net.connect;
  mock.method(net, 'connect', (...args: Parameters<typeof net.connect>) => {
    const socket = connect(...args);
    sockets.push(socket);
    return socket;
  });
  t.after(() => mock.restoreAll());
  return sockets;
}

/** Waits (bounded) until `socket` is destroyed. */
async function closedSoon(socket: net.Socket): Promise<boolean> {
  for (let i = 0; i < 200 && !socket.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
  return socket.destroyed;
}

/** A minimal server that keeps its side open after the client's FIN (allowHalfOpen). */
async function halfOpenServer(
  t: TestContext,
  onQuit: (socket: net.Socket) => void,
  quitAnswer = '+OK bye\r\n',
): Promise<number> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    socket.write('+OK hi\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let i = buffer.indexOf('\n'); i !== -1; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        if (line === 'CAPA') socket.write('+OK\r\nSASL XOAUTH2\r\n.\r\n');
        else if (line === 'QUIT') {
          socket.write(quitAnswer);
          onQuit(socket);
        } else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // server.close() waits for its connections: end the ones a test left half-open first.
  t.after(() => {
    for (const socket of open) socket.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as net.AddressInfo).port;
}

for (const after of ['nothing', 'stray bytes', 'no close at all'] as const) {
  test(
    `after QUIT (then ${after} from the server) the client's socket is closed and its listeners removed`,
    HANG,
    async (t) => {
      const sockets = captureSockets(t);
      const serverSockets: net.Socket[] = [];
      const port = await halfOpenServer(t, (socket) => {
        serverSockets.push(socket);
        // Later segments, after the client has read +OK and let go of the socket.
        setTimeout(() => {
          if (after === 'stray bytes') socket.write('* stray\r\n');
          // A server that never closes must not keep the client's socket (or process) alive.
          if (after !== 'no close at all') setTimeout(() => socket.end(), 50);
        }, 50);
      });
      t.after(() => {
        for (const s of serverSockets) s.destroy();
      });
      const client = new Pop3Client({ host: '127.0.0.1', port, tls: 'none-loopback-insecure' });
      t.after(() => client.close());
      await client.connect();
      await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
      await client.quit();
      assert.equal(client.state, 'closed');
      assert.equal(sockets.length, 1);
      const socket = sockets[0]!;
      assert.equal(socket.listenerCount('readable'), 0);
      assert.equal(await closedSoon(socket), true, 'the socket closes after QUIT');
    },
  );
}

test(
  'STLS: plaintext injected in a later segment after +OK fails closed, no credential is sent',
  HANG,
  async (t) => {
    const certs = await createTestCerts(t);
    const received: string[] = [];
    const sockets: net.Socket[] = [];
    const server = net.createServer((raw) => {
      sockets.push(raw);
      raw.on('error', () => {});
      raw.write('+OK hi\r\n');
      let buffer = '';
      const onLine = (socket: net.Socket, line: string, secure: boolean) => {
        received.push(`${secure ? 'tls' : 'plain'}:${line}`);
        if (line === 'CAPA') socket.write('+OK\r\nSTLS\r\nSASL XOAUTH2\r\n.\r\n');
        else if (line === 'STLS' && !secure) {
          raw.pause();
          raw.removeAllListeners('data');
          raw.write('+OK begin TLS\r\n');
          setTimeout(() => {
            // The injection, in its own segment, then a genuine handshake.
            raw.write('+OK\r\nSASL PLAIN\r\n.\r\n');
            const secured = new tls.TLSSocket(raw, {
              isServer: true,
              key: certs.server.keyPem,
              cert: certs.server.certPem,
            });
            secured.on('error', () => {});
            let tlsBuffer = '';
            secured.on('data', (chunk: Buffer) => {
              tlsBuffer += chunk.toString('latin1');
              for (let i = tlsBuffer.indexOf('\n'); i !== -1; i = tlsBuffer.indexOf('\n')) {
                const l = tlsBuffer.slice(0, i).trim();
                tlsBuffer = tlsBuffer.slice(i + 1);
                onLine(secured, l, true);
              }
            });
          }, 30);
        } else socket.write('+OK\r\n');
      };
      raw.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let i = buffer.indexOf('\n'); i !== -1; i = buffer.indexOf('\n')) {
          const line = buffer.slice(0, i).trim();
          buffer = buffer.slice(i + 1);
          onLine(raw, line, false);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const client = new Pop3Client({
      host: 'localhost',
      port: (server.address() as net.AddressInfo).port,
      tls: 'starttls',
      ca: certs.caCertPem,
      timeouts: { connect: 5000, greeting: 5000, command: 5000 },
    });
    t.after(() => client.close());
    await assert.rejects(
      client.connect(),
      (e) => isPopgateError(e, 'ERR_POP3_TLS') || isPopgateError(e, 'ERR_POP3_STLS_INJECTION'),
    );
    assert.equal(client.state, 'closed');
    assert.ok(
      !received.some((l) => l.startsWith('tls:')),
      `nothing was sent after STLS: ${received.join(' ')}`,
    );
  },
);

test(
  'stray bytes in the same read as the +OK to QUIT are not read: quit resolves, close says closed',
  HANG,
  async (t) => {
    const port = await halfOpenServer(t, (socket) => socket.end(), '+OK bye\r\n* stray\r\n');
    const client = new Pop3Client({ host: '127.0.0.1', port, tls: 'none-loopback-insecure' });
    t.after(() => client.close());
    const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
    await client.connect();
    await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
    await client.quit();
    const err = await closed;
    assert.ok(isPopgateError(err, 'ERR_POP3_CLOSED'), `close event: ${(err as Error).message}`);
  },
);
