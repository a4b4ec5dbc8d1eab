import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { Pop3Client } from '../../src/client/index.ts';
import { isPopgateError } from '../../src/errors.ts';
import { clientOnFakeServer } from '../helpers/fake-client.ts';
import { DEFAULT_CAPA, type FakeSession, maildropScript } from '../helpers/fake-pop3-server.ts';

const MESSAGES = [
  'Subject: one\r\n\r\nhello\r\n',
  'Subject: two\n\n.dot line\n..two dots\nend',
  'Subject: 3\r\n\r\n',
];

async function setup(t: import('node:test').TestContext, opts: Parameters<typeof maildropScript>[0]) {
  const pair = await clientOnFakeServer(t, maildropScript(opts), { timeouts: { command: 5000, idle: 5000 } });
  await pair.client.connect();
  return pair;
}

test('a session runs every RFC 1939 command and streams messages dot-unstuffed', async (t) => {
  const { server, client } = await setup(t, { messages: MESSAGES });
  assert.equal(client.capabilities?.pipelining, true);
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u@example.com', token: 'tok' });
  assert.equal(client.state, 'transaction');
  assert.deepEqual(await client.stat(), { count: 3, size: 24 + 42 + 15 });
  assert.deepEqual(
    (await client.list()).map((l) => l.number),
    [1, 2, 3],
  );
  assert.deepEqual(
    (await client.uidl()).map((u) => u.uid),
    ['uid-1', 'uid-2', 'uid-3'],
  );
  assert.equal(
    await text(await client.retrieve(2)),
    'Subject: two\r\n\r\n.dot line\r\n..two dots\r\nend\r\n',
  );
  assert.equal(await text(await client.top(2, 1)), 'Subject: two\r\n\r\n.dot line\r\n');
  await client.delete(1);
  await client.reset();
  await client.noop();
  await client.quit();
  assert.equal(client.state, 'closed');
  assert.ok(server.received.includes('plain:QUIT'));
  assert.deepEqual(server.scriptErrors, []);
});

test('-ERR to RETR rejects that call only and the session goes on', async (t) => {
  const { client } = await setup(t, { messages: MESSAGES });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  await assert.rejects(client.retrieve(9), (e) => isPopgateError(e, 'ERR_POP3_ERR_RESPONSE'));
  assert.equal(await text(await client.retrieve(1)), MESSAGES[0]);
});

test('with PIPELINING, retrieveMany writes the RETRs before the first answer and keeps order', async (t) => {
  let sawAllBeforeAnswering = false;
  const messages = Array.from({ length: 20 }, (_, i) => `Subject: ${i + 1}\r\n\r\nbody ${i + 1}\r\n`);
  const { client } = await setup(t, {
    messages,
    on: async (verb, _args, s: FakeSession) => {
      if (verb !== 'RETR' || sawAllBeforeAnswering) return false;
      // Hold the first answer until every other RETR has arrived: only a pipelining client gets past.
      for (let i = 0; i < 200 && s.pendingLines < 19; i++) await new Promise((r) => setTimeout(r, 10));
      sawAllBeforeAnswering = s.pendingLines >= 19;
      return false;
    },
  });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  const got: string[] = [];
  for await (const { number, stream } of client.retrieveMany(messages.map((_, i) => i + 1))) {
    got.push(`${number}:${await text(stream)}`);
  }
  assert.ok(sawAllBeforeAnswering, 'all RETR commands were in flight together');
  assert.deepEqual(
    got,
    messages.map((m, i) => `${i + 1}:${m}`),
  );
});

test('without PIPELINING, commands are written one at a time', async (t) => {
  let overlapped = false;
  const messages = ['a\r\n', 'b\r\n', 'c\r\n'];
  const { client } = await setup(t, {
    messages,
    capa: DEFAULT_CAPA.filter((c) => c !== 'PIPELINING'),
    on: async (verb, _args, s) => {
      if (verb === 'RETR') {
        await new Promise((r) => setTimeout(r, 30));
        if (s.pendingLines > 0) overlapped = true;
      }
      return false;
    },
  });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  const got: string[] = [];
  for await (const { stream } of client.retrieveMany([1, 2, 3])) got.push(await text(stream));
  assert.deepEqual(got, messages);
  assert.equal(overlapped, false);
});

test('leaving retrieveMany early keeps the connection usable', async (t) => {
  const messages = Array.from({ length: 10 }, (_, i) => `m${i}\r\n`);
  const { client } = await setup(t, { messages });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  for await (const { stream } of client.retrieveMany(messages.map((_, i) => i + 1))) {
    assert.equal(await text(stream), 'm0\r\n');
    break;
  }
  assert.equal(await text(await client.retrieve(5)), 'm4\r\n');
  await client.noop();
});

test('an AbortSignal aborts a call before it is sent, and one in flight, without breaking the session', async (t) => {
  const { client } = await setup(t, { messages: MESSAGES });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  await assert.rejects(client.noop({ signal: AbortSignal.abort() }), (e) =>
    isPopgateError(e, 'ERR_POP3_ABORTED'),
  );
  const controller = new AbortController();
  const p = client.list({ signal: controller.signal });
  controller.abort();
  await assert.rejects(p, (e) => isPopgateError(e, 'ERR_POP3_ABORTED'));
  assert.equal((await client.list()).length, 3);
});

test('commands before login are refused with ERR_POP3_STATE', async (t) => {
  const { client } = await setup(t, { messages: MESSAGES });
  await assert.rejects(client.stat(), (e) => isPopgateError(e, 'ERR_POP3_STATE'));
  await assert.rejects(client.retrieve(0), (e) => isPopgateError(e, 'ERR_POP3_STATE'));
});

test('bad message numbers are refused before anything is written', async (t) => {
  const { client, server } = await setup(t, { messages: MESSAGES });
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  const before = server.received.length;
  await assert.rejects(client.retrieve(0), (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'));
  await assert.rejects(client.delete(1.5), (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'));
  assert.equal(server.received.length, before);
});

test('USER/PASS is refused unless allowPasswordLogin is set', async (t) => {
  const { client } = await setup(t, { messages: MESSAGES });
  await assert.rejects(client.loginWithPassword({ user: 'u', password: 'p' }), (e) =>
    isPopgateError(e, 'ERR_POP3_UNSUPPORTED'),
  );
});

test('unknown options fail with the option name', () => {
  assert.throws(
    () => new Pop3Client({ host: '127.0.0.1', rejectUnauthorized: false } as never),
    (e) => isPopgateError(e, 'ERR_CONFIG_UNKNOWN_KEY') && /rejectUnauthorized/.test((e as Error).message),
  );
});

test('plaintext to a host that is not loopback is refused', () => {
  assert.throws(
    () => new Pop3Client({ host: 'pop.example.com', tls: 'none-loopback-insecure' }),
    (e) => isPopgateError(e, 'ERR_POP3_PLAINTEXT_REFUSED'),
  );
});
