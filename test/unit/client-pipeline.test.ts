// Pipelining proofs that no serial client can pass: the scripted server answers a RETR only
// while it holds several unanswered ones, so a client that waits for each answer before the
// next RETR gets nothing and its command times out. No time is asserted.
import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { mock, test } from 'node:test';
import { Connection } from '../../src/client/connection.ts';
import { Pop3Client } from '../../src/client/index.ts';
import { AbortRegistry, DeadlineTimer } from '../../src/client/job-watch.ts';
import { isPopgateError } from '../../src/errors.ts';
import { loggedInOnFakeServer } from '../helpers/fake-client.ts';
import { type HeldRetrStats, heldRetrScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';

const message = (i: number) =>
  `Subject: ${i}\r\n\r\n${i % 3 === 0 ? '.starts with a dot\r\n' : ''}body ${i}\r\n`;

async function connect(
  t: import('node:test').TestContext,
  script: Parameters<typeof heldRetrScript>[0],
  depth: number,
) {
  return loggedInOnFakeServer(t, heldRetrScript(script), {
    timeouts: { command: 10_000, idle: 10_000 },
    limits: { maxPipelineDepth: depth },
  });
}

test('retrieveMany gets every answer from a server that answers only with 10 RETRs in hand', async (t) => {
  const messages = Array.from({ length: 10 }, (_, i) => message(i + 1));
  const stats: HeldRetrStats = { maxHeld: 0, answered: 0 };
  const { server, client } = await connect(t, { messages, minHeld: 10, stats }, 64);
  const got: string[] = [];
  for await (const { number, stream } of client.retrieveMany(messages.map((_, i) => i + 1))) {
    got.push(`${number}:${await text(stream)}`);
  }
  assert.deepEqual(
    got,
    messages.map((m, i) => `${i + 1}:${m}`),
  );
  assert.equal(stats.maxHeld, 10);
  assert.equal(stats.answered, 10);
  assert.deepEqual(server.scriptErrors, []);
});

test('retrieveMany keeps at least half the pipeline depth in flight across refills', async (t) => {
  // Depth 8: the server answers only while it holds 5 unanswered RETRs (or all that remain), so
  // the client must refill the pipe while answers are still owed, again and again (60 messages).
  const messages = Array.from({ length: 60 }, (_, i) => message(i + 1));
  const stats: HeldRetrStats = { maxHeld: 0, answered: 0 };
  const { server, client } = await connect(t, { messages, minHeld: 5, stats }, 8);
  let n = 0;
  for await (const { number, stream } of client.retrieveMany(messages.map((_, i) => i + 1))) {
    n += 1;
    assert.equal(number, n);
    assert.equal(await text(stream), messages[n - 1]);
  }
  assert.equal(n, 60);
  assert.equal(stats.answered, 60);
  assert.ok(stats.maxHeld <= 8, 'never more than the pipeline depth in flight');
  await client.noop();
  assert.deepEqual(server.scriptErrors, []);
});

test('one AbortSignal shared by 2,000 queued calls aborts them all and the session goes on', async (t) => {
  const messages = Array.from({ length: 3 }, (_, i) => message(i + 1));
  const { server, client } = await connect(t, { messages, minHeld: 1 }, 64);
  const controller = new AbortController();
  const calls = Array.from({ length: 2000 }, () => client.noop({ signal: controller.signal }));
  await new Promise((resolve) => setImmediate(resolve)); // the first 64 NOOPs are written
  controller.abort();
  const results = await Promise.allSettled(calls);
  const aborted = results.filter(
    (r) => r.status === 'rejected' && isPopgateError(r.reason, 'ERR_POP3_ABORTED'),
  ).length;
  assert.equal(results.filter((r) => r.status === 'rejected').length, aborted, 'only aborts');
  assert.ok(aborted >= 2000 - 64, `${aborted} calls aborted`);
  // The NOOPs in flight are answered and discarded: the pipe is still in step.
  assert.equal(await text(await client.retrieve(2)), messages[1]);
  assert.ok(server.received.filter((l) => l === 'plain:NOOP').length <= 64);
  assert.deepEqual(server.scriptErrors, []);
});

test('the head deadline fires for the watched job only, and a later deadline replaces an earlier one', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let now = 0;
    const expired: string[] = [];
    const timer = new DeadlineTimer<string>(
      (job) => expired.push(job),
      () => now,
    );
    const advance = (ms: number) => {
      now += ms;
      mock.timers.tick(ms);
    };
    timer.watch('a', 100);
    advance(60);
    timer.watch('b', 100); // b's deadline is 160; the pending timer fires at 100 and re-arms
    advance(50);
    assert.deepEqual(expired, []);
    advance(60);
    assert.deepEqual(expired, ['b']);
    timer.watch('c', 100);
    timer.unwatch('c');
    advance(200);
    assert.deepEqual(expired, ['b']);
    timer.watch('d', 10);
    timer.stop();
    advance(50);
    assert.deepEqual(expired, ['b']);
  } finally {
    mock.timers.reset();
  }
});

test('the abort registry keeps one listener per signal and forgets settled jobs', () => {
  const aborted: number[] = [];
  const registry = new AbortRegistry<{ id: number; signal: AbortSignal }>((job) => aborted.push(job.id));
  const controller = new AbortController();
  let listeners = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners += 1;
    add(...args);
  }) as typeof add;
  const jobs = Array.from({ length: 100 }, (_, id) => ({ id, signal: controller.signal }));
  for (const job of jobs) registry.add(job);
  for (const job of jobs.slice(0, 50)) registry.delete(job);
  controller.abort();
  assert.equal(listeners, 1);
  assert.deepEqual(
    aborted,
    jobs.slice(50).map((j) => j.id),
  );
});

test('the pipeline window is bounded by the octets LIST announced, not only by the command count', async (t) => {
  // 40 messages of one size; a window of 10 messages' octets and a depth of 1024. The server
  // answers only while it holds 6 unanswered RETRs, so the client must keep at least 6 in flight,
  // and the byte budget must keep it at 10 at most.
  const body = 'x'.repeat(200);
  const messages = Array.from(
    { length: 40 },
    (_, i) => `Subject: ${String(i + 1).padStart(3, '0')}\r\n\r\n${body}\r\n`,
  );
  const size = Buffer.byteLength(messages[0]!, 'latin1');
  const stats: HeldRetrStats = { maxHeld: 0, answered: 0 };
  const held = await startFakePop3Server({ script: heldRetrScript({ messages, minHeld: 6, stats }) });
  t.after(() => held.close());
  const client = new Pop3Client({
    host: held.host,
    port: held.port,
    tls: 'none-loopback-insecure',
    timeouts: { command: 10_000, idle: 10_000 },
    limits: { maxPipelineDepth: 1024, maxPipelineBytes: 10 * size },
  });
  t.after(() => client.close());
  await client.connect();
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u@example.test', token: 'tok' });
  const listed = await client.list();
  assert.ok(listed.every((entry) => entry.size === size));
  let n = 0;
  for await (const { stream } of client.retrieveMany(messages.map((_, i) => i + 1))) {
    assert.equal(await text(stream), messages[n]);
    n += 1;
  }
  assert.equal(n, 40);
  assert.ok(stats.maxHeld >= 6, `at least 6 in flight (saw ${stats.maxHeld})`);
  assert.ok(stats.maxHeld <= 10, `at most 10 messages' octets in flight (saw ${stats.maxHeld})`);
  assert.deepEqual(held.scriptErrors, []);
});

test('retrieveMany queues RETRs a window ahead of the consumer, not the whole maildrop at once', async (t) => {
  // 300 messages, depth 4: the consumer holds the first stream while the count of queued
  // commands is read. Queuing everything up front (the old behaviour) makes it 300.
  const messages = Array.from({ length: 300 }, (_, i) => message(i + 1));
  const { server, client } = await connect(t, { messages, minHeld: 1 }, 4);
  let submitted = 0;
  const submit = Connection.prototype.submit;
  mock.method(
    Connection.prototype,
    'submit',
    function (this: Connection, ...args: Parameters<typeof submit>) {
      if (args[0].verb === 'RETR') submitted++;
      return submit.apply(this, args);
    },
  );
  t.after(() => mock.restoreAll());
  const numbers = messages.map((_, i) => i + 1);
  let n = 0;
  for await (const { stream } of client.retrieveMany(numbers)) {
    if (n === 0) assert.ok(submitted <= 2 * 4 + 1, `${submitted} RETRs queued before the first was taken`);
    assert.equal(await text(stream), messages[n]);
    n += 1;
  }
  assert.equal(n, 300);
  assert.equal(submitted, 300);
  assert.deepEqual(server.scriptErrors, []);
});
