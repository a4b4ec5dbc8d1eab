import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { type TestContext, test } from 'node:test';
import type { Pop3ClientOptions } from '../../src/client/index.ts';
import { isPopgateError, Pop3Error } from '../../src/errors.ts';
import { clientOnFakeServer, loggedInOnFakeServer } from '../helpers/fake-client.ts';
import { type FakeScript, type FakeSession, maildropScript } from '../helpers/fake-pop3-server.ts';

const TIMEOUTS = { timeouts: { command: 5000, idle: 5000, greeting: 5000 } };
const connect = (t: TestContext, script: FakeScript, extra: Partial<Pop3ClientOptions> = {}) =>
  clientOnFakeServer(t, script, { ...TIMEOUTS, ...extra });

async function loggedIn(
  t: TestContext,
  opts: Parameters<typeof maildropScript>[0],
  extra: Partial<Pop3ClientOptions> = {},
) {
  return loggedInOnFakeServer(t, maildropScript(opts), { ...TIMEOUTS, ...extra });
}

test('a server that drops mid-RETR fails the stream and every pending call with ERR_POP3_CLOSED', async (t) => {
  const { client } = await loggedIn(t, {
    messages: ['x'],
    on: (verb, _a, s) => {
      if (verb !== 'RETR') return false;
      s.write('+OK 100000 octets\r\nSubject: half\r\n\r\npartial bo');
      setTimeout(() => s.destroy(), 50);
      return true;
    },
  });
  const stream = await client.retrieve(1);
  const queued = client.noop();
  await assert.rejects(text(stream), (e) => isPopgateError(e, 'ERR_POP3_CLOSED'));
  await assert.rejects(queued, (e) => isPopgateError(e, 'ERR_POP3_CLOSED'));
  assert.equal(client.state, 'closed');
  await assert.rejects(client.noop(), (e) => isPopgateError(e, 'ERR_POP3_STATE'));
});

for (const [label, delta] of [
  ['fewer', -5],
  ['more', 5],
] as const) {
  test(`a server that sends ${label} bytes than LIST fails that stream with ERR_POP3_SIZE_MISMATCH and the session goes on`, async (t) => {
    const body = 'Subject: s\r\n\r\n0123456789\r\n';
    const { client } = await loggedIn(t, {
      messages: [body, 'next\r\n'],
      on: (verb, _a, s) => {
        if (verb !== 'LIST') return false;
        s.write(`+OK\r\n1 ${Buffer.byteLength(body) - delta}\r\n2 6\r\n.\r\n`);
        return true;
      },
    });
    await client.list();
    await assert.rejects(text(await client.retrieve(1)), (e) => isPopgateError(e, 'ERR_POP3_SIZE_MISMATCH'));
    assert.equal(await text(await client.retrieve(2)), 'next\r\n');
  });
}

test('the size in "+OK n octets" is checked when LIST was not read', async (t) => {
  const { client } = await loggedIn(t, {
    messages: ['x'],
    on: (verb, _a, s) => {
      if (verb !== 'RETR') return false;
      s.write('+OK 50 octets\r\nshort\r\n.\r\n');
      return true;
    },
  });
  await assert.rejects(text(await client.retrieve(1)), (e) => isPopgateError(e, 'ERR_POP3_SIZE_MISMATCH'));
});

test('a huge line closes the connection with ERR_POP3_LINE_TOO_LONG', async (t) => {
  const { client } = await connect(
    t,
    async (s) => {
      s.write(`+OK ${'x'.repeat(100_000)}`);
      await s.readLine().catch(() => {});
    },
    { limits: { maxLineLength: 1024 } },
  );
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_LINE_TOO_LONG'));
  assert.equal(client.state, 'closed');
});

test('an unknown response code is kept on the typed error', async (t) => {
  const { client } = await loggedIn(t, {
    messages: ['x'],
    on: (verb, _a, s) => {
      if (verb !== 'DELE') return false;
      s.write('-ERR [X-VENDOR/THING] cannot\r\n');
      return true;
    },
  });
  await assert.rejects(
    client.delete(1),
    (e) =>
      e instanceof Pop3Error &&
      e.code === 'ERR_POP3_ERR_RESPONSE' &&
      e.responseCode === 'X-VENDOR/THING' &&
      e.serverText === 'cannot',
  );
  await client.noop();
});

test('a server that drips one byte at a time still gives the right answers', async (t) => {
  const message = 'Subject: drip\r\n\r\n..dot\r\nbody\r\n';
  const drip = (s: FakeSession, data: string) => {
    for (const ch of data) s.write(ch);
  };
  const script: FakeScript = async (s) => {
    const send = async (data: string) => {
      for (const ch of data) {
        s.write(ch);
        await new Promise((r) => setImmediate(r));
      }
    };
    void drip;
    await send('+OK hi\r\n');
    for (;;) {
      const line = await s.readLine();
      if (line === 'CAPA') await send('+OK\r\nSASL XOAUTH2\r\nPIPELINING\r\n.\r\n');
      else if (line.startsWith('AUTH')) await send('+OK\r\n');
      else if (line === 'LIST') await send(`+OK\r\n1 ${Buffer.byteLength(message) - 1}\r\n.\r\n`);
      else if (line === 'RETR 1') await send(`+OK\r\n${message}.\r\n`);
      else if (line === 'QUIT') {
        await send('+OK\r\n');
        return;
      }
    }
  };
  const { client } = await connect(t, script);
  await client.connect();
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  assert.equal((await client.list())[0]?.size, Buffer.byteLength(message) - 1);
  assert.equal(await text(await client.retrieve(1)), 'Subject: drip\r\n\r\n.dot\r\nbody\r\n');
  await client.quit();
});

test('a missing greeting ends with ERR_POP3_TIMEOUT', async (t) => {
  const { client } = await connect(
    t,
    async (s) => {
      await s.readLine().catch(() => {});
    },
    { timeouts: { greeting: 200 } },
  );
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_TIMEOUT'));
});

test('a command without an answer ends with ERR_POP3_TIMEOUT and closes', async (t) => {
  const { client } = await loggedIn(
    t,
    { messages: ['x'], on: (verb) => verb === 'NOOP' },
    { timeouts: { command: 200, idle: 10_000 } },
  );
  await assert.rejects(client.noop(), (e) => isPopgateError(e, 'ERR_POP3_TIMEOUT'));
  assert.equal(client.state, 'closed');
});

test('a message over maxMessageSize fails with ERR_POP3_MESSAGE_TOO_LARGE', async (t) => {
  const { client } = await loggedIn(
    t,
    { messages: [`${'y'.repeat(5000)}\r\n`] },
    { limits: { maxMessageSize: 1000 } },
  );
  await assert.rejects(text(await client.retrieve(1)), (e) =>
    isPopgateError(e, 'ERR_POP3_MESSAGE_TOO_LARGE'),
  );
});

test('a multi-line answer over maxMultilineResponse fails with ERR_POP3_RESPONSE_TOO_LARGE', async (t) => {
  const messages = Array.from({ length: 200 }, () => 'm\r\n');
  const { client } = await loggedIn(t, { messages }, { limits: { maxMultilineResponse: 500 } });
  await assert.rejects(client.uidl(), (e) => isPopgateError(e, 'ERR_POP3_RESPONSE_TOO_LARGE'));
});

test('a non-POP3 peer is ERR_POP3_PROTOCOL', async (t) => {
  const { client } = await connect(t, async (s) => {
    s.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    await s.readLine().catch(() => {});
  });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'));
});

test('the client signal closes the connection and rejects pending calls with ERR_POP3_ABORTED', async (t) => {
  const controller = new AbortController();
  const { client } = await loggedIn(
    t,
    { messages: ['x'], on: (verb) => verb === 'NOOP' },
    { signal: controller.signal },
  );
  const pending = client.noop();
  controller.abort();
  await assert.rejects(pending, (e) => isPopgateError(e, 'ERR_POP3_ABORTED'));
  assert.equal(client.state, 'closed');
});

test('a slow consumer pauses the socket instead of buffering the message', async (t) => {
  const big = `${'z'.repeat(999)}\r\n`.repeat(8 * 1024); // ~8 MB
  const { client } = await loggedIn(t, { messages: [big] });
  const stream = await client.retrieve(1);
  await new Promise((r) => setTimeout(r, 300));
  // Node buffers up to highWaterMark plus what one socket read delivered; never the message.
  assert.ok(stream.readableLength < 2 * 1024 * 1024, `buffered ${stream.readableLength}`);
  let n = 0;
  for await (const chunk of stream) n += (chunk as Buffer).length;
  assert.equal(n, big.length);
});
