// The relay's look-ahead (src/proxy/session.ts): pipelined local commands are sent upstream before
// the answer to the one in front of them has been relayed, answered strictly in order; QUIT is
// never sent ahead. The scripted upstream withholds its answer to RETR 1 until it has received
// the next command, so without look-ahead the session waits forever and the test times out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPop3Proxy } from '../../src/proxy/index.ts';
import {
  type FakePop3Server,
  type FakeSession,
  maildropScript,
  startFakePop3Server,
  stuff,
} from '../helpers/fake-pop3-server.ts';
import { WireClient } from './server-helpers.ts';

const MESSAGES = [
  'Subject: one\r\n\r\nfirst\r\n',
  'Subject: two\r\n\r\n.second\r\n',
  'Subject: 3\r\n\r\nthird\r\n',
];
const CAPA = ['UIDL', 'PIPELINING', 'SASL XOAUTH2'];

const account = (port: number) => ({
  name: 'work',
  localUser: 'me@example.test',
  token: async () => 'token',
  upstream: { host: '127.0.0.1', port, tls: 'none-loopback-insecure' as const, user: 'me@example.test' },
});
const checkPassword = async (_account: string, password: string) =>
  password === 'right' ? { id: 'test', label: 'test' } : undefined;

const retrAnswer = (n: number) => `+OK\r\n${stuff(MESSAGES[n - 1]!)}`;

async function withProxy(
  t: { after(fn: () => Promise<void>): void },
  on: (verb: string, args: string[], s: FakeSession) => Promise<boolean> | boolean,
): Promise<{ port: number; upstream: FakePop3Server }> {
  const upstream = await startFakePop3Server({
    script: maildropScript({ messages: MESSAGES, capa: CAPA, on }),
  });
  const proxy = createPop3Proxy({
    listen: ['pop3://127.0.0.1:0'],
    accounts: [account(upstream.port)],
    checkPassword,
    limits: { failedLoginDelayMs: 0 },
  });
  const [address] = await proxy.listen();
  t.after(async () => {
    await proxy.close({ graceMs: 0 });
    await upstream.close();
  });
  return { port: address!.port, upstream };
}

async function login(port: number): Promise<WireClient> {
  const c = await WireClient.connect(port);
  await c.line();
  c.write('USER me@example.test\r\nPASS right\r\n');
  assert.match(await c.line(), /^\+OK/);
  assert.match(await c.line(), /^\+OK/);
  return c;
}

test('pipelined RETRs go upstream before the first answer is relayed, answered in order', async (t) => {
  const { port, upstream } = await withProxy(t, async (verb, args, s) => {
    if (verb !== 'RETR' || args[0] !== '1') return false;
    // Withhold RETR 1's answer until RETR 2 has arrived: only a look-ahead sends it.
    const next = await s.readLine();
    assert.equal(next, 'RETR 2');
    s.write(retrAnswer(1) + retrAnswer(2));
    return true;
  });
  const c = await login(port);
  c.write('RETR 1\r\nRETR 2\r\nRETR 3\r\n');
  for (let n = 1; n <= 3; n++) {
    assert.match(await c.line(), /^\+OK/);
    const body = await c.body();
    assert.equal(`${body.join('\r\n')}\r\n`, MESSAGES[n - 1]);
  }
  assert.match(await c.command('QUIT'), /^\+OK/);
  await c.waitClosed();
  assert.deepEqual(upstream.scriptErrors, []);
});

test('QUIT is not sent upstream ahead: it waits until every earlier answer was written', async (t) => {
  let quitSeenBeforeRetrAnswered = false;
  const { port, upstream } = await withProxy(t, async (verb, args, s) => {
    if (verb === 'QUIT') return false;
    if (verb !== 'RETR' || args[0] !== '1') return false;
    // NOOP comes ahead of its turn; anything after it (the QUIT) must not.
    assert.equal(await s.readLine(), 'NOOP');
    quitSeenBeforeRetrAnswered = s.pendingLines > 0;
    s.write(`${retrAnswer(1)}+OK\r\n`);
    return true;
  });
  const c = await login(port);
  c.write('RETR 1\r\nNOOP\r\nQUIT\r\n');
  assert.match(await c.line(), /^\+OK/);
  await c.body();
  assert.match(await c.line(), /^\+OK/);
  assert.match(await c.line(), /^\+OK/);
  await c.waitClosed();
  assert.equal(quitSeenBeforeRetrAnswered, false);
  assert.ok(upstream.received.some((l) => l.endsWith('QUIT')));
  assert.deepEqual(upstream.scriptErrors, []);
});
