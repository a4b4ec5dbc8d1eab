import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createServerMetrics, startMetricsListener } from '../../src/observability/metrics.ts';
import { parseListenUrl, resolveServerOptions } from '../../src/server/options.ts';
import { MemoryStore, startTestServer, TableValidator, WireClient, xoauth2 } from './server-helpers.ts';

const base = { validator: new TableValidator(), store: new MemoryStore() };

describe('server options', () => {
  it('parses pop3s:// and pop3:// listen URLs, IPv6 included', () => {
    assert.deepEqual(parseListenUrl('pop3s://127.0.0.1:995'), {
      kind: 'implicit',
      host: '127.0.0.1',
      port: 995,
    });
    assert.deepEqual(parseListenUrl('pop3://[::1]:110'), { kind: 'starttls', host: '::1', port: 110 });
    assert.throws(() => parseListenUrl('imap://x:1'), { code: 'ERR_SERVER_CONFIG' });
    assert.throws(() => parseListenUrl('pop3://x:70000'), { code: 'ERR_SERVER_CONFIG' });
  });

  it('refuses to start without TLS unless plaintext is explicitly allowed on loopback', () => {
    assert.throws(
      () => resolveServerOptions({ ...base, listen: ['pop3://127.0.0.1:0'] }),
      /certificate and key/,
    );
    assert.throws(
      () => resolveServerOptions({ ...base, listen: ['pop3://0.0.0.0:0'], allowPlaintextLoopback: true }),
      /loopback only/,
    );
    assert.throws(
      () => resolveServerOptions({ ...base, listen: ['pop3s://127.0.0.1:0'], allowPlaintextLoopback: true }),
      /pop3s:\/\/ needs/,
    );
    const ok = resolveServerOptions({
      ...base,
      listen: ['pop3://127.0.0.1:0'],
      allowPlaintextLoopback: true,
    });
    assert.ok(Object.isFrozen(ok) && Object.isFrozen(ok.limits));
  });

  it('names unknown options and limits', () => {
    const listen = ['pop3://127.0.0.1:0'];
    assert.throws(
      () => resolveServerOptions({ ...base, listen, allowPlaintextLoopback: true, tlz: 1 } as never),
      /option tlz: unknown/,
    );
    assert.throws(
      () =>
        resolveServerOptions({ ...base, listen, allowPlaintextLoopback: true, limits: { idle: 1 } as never }),
      /limits\.idle: unknown/,
    );
  });

  it('never mutates the caller object', () => {
    const input = {
      ...base,
      listen: ['pop3://127.0.0.1:0'],
      allowPlaintextLoopback: true,
      limits: { idleTimeoutMs: 5 },
    };
    const copy = JSON.stringify({ listen: input.listen, limits: input.limits });
    resolveServerOptions(input);
    assert.equal(JSON.stringify({ listen: input.listen, limits: input.limits }), copy);
  });
});

describe('operations', () => {
  it('IMPLEMENTATION can be turned off', async (t) => {
    const s = await startTestServer({ implementation: false });
    t.after(() => s.close());
    const c = await s.client();
    const [, caps] = await c.multi('CAPA');
    assert.ok(!caps.some((l) => l.startsWith('IMPLEMENTATION')));
  });

  it('refuses connections over the per-address limit with -ERR [SYS/TEMP]', async (t) => {
    const s = await startTestServer({ limits: { maxConnectionsPerIp: 2 } });
    t.after(() => s.close());
    await s.client();
    await s.client();
    const third = await WireClient.connect(s.port);
    assert.match(await third.line(), /^-ERR \[SYS\/TEMP\] Too many connections/);
    await third.waitClosed();
  });

  it('refuses a third session of one user over the per-user limit', async (t) => {
    const s = await startTestServer({ limits: { maxConnectionsPerUser: 1 } });
    t.after(() => s.close());
    await s.login();
    const c = await s.client();
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`),
      /^-ERR \[IN-USE\] Too many/,
    );
  });

  it('serves /metrics and /healthz on loopback with login and session counters', async (t) => {
    const metrics = createServerMetrics({ defaultMetrics: false });
    const listener = await startMetricsListener(metrics, { port: 0 });
    t.after(() => listener.close());
    assert.equal(listener.address.address, '127.0.0.1');
    const s = await startTestServer({ metrics });
    t.after(() => s.close());
    const c = await s.login();
    await c.command('RETR 1');
    await c.body();
    const bad = await s.client();
    await bad.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'nope')}`);
    await bad.command('');
    const base = `http://127.0.0.1:${listener.address.port}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /popgate_pop3_logins_total\{result="ok",reason="ok",mechanism="XOAUTH2"\} 1/);
    assert.match(
      text,
      /popgate_pop3_logins_total\{result="fail",reason="ERR_AUTH_INVALID_TOKEN",mechanism="XOAUTH2"\} 1/,
    );
    assert.match(text, /popgate_pop3_sessions\{listener="starttls"\} 2/);
    assert.match(text, /popgate_pop3_message_bytes_out_total [1-9]/);
    assert.match(text, /popgate_pop3_command_seconds_count\{verb="RETR"\} 1/);
    assert.match(text, /popgate_token_validation_seconds_count\{method="jwt",result="ok"\} 1/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  it('healthz answers 503 when unhealthy', async (t) => {
    const metrics = createServerMetrics({ defaultMetrics: false });
    const listener = await startMetricsListener(metrics, { port: 0, healthy: () => false });
    t.after(() => listener.close());
    assert.equal((await fetch(`http://127.0.0.1:${listener.address.port}/healthz`)).status, 503);
  });

  it('graceful close ends idle sessions after the grace period without committing deletions', async (t) => {
    const s = await startTestServer();
    const c = await s.login();
    await c.command('DELE 1');
    await s.server.close({ graceMs: 50 });
    assert.match(await c.line(), /^-ERR \[SYS\/TEMP\] Server shutting down/);
    await c.waitClosed();
    assert.equal(s.store.commits.length, 0);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 2);
    assert.equal(s.store.locked.size, 0);
    t.after(() => s.close());
  });

  it('graceful close lets an UPDATE in progress finish', async (t) => {
    const s = await startTestServer();
    // The commit waits for the test, so close() surely meets the session in UPDATE.
    const { entered, release } = holdCommits(s.store);
    const c = await s.login();
    await c.command('DELE 1');
    c.write('QUIT\r\n');
    await entered;
    const bystander = await s.client();
    const closed = s.server.close({ graceMs: 0 });
    // close() ends every session in one synchronous pass: once the bystander is told, the
    // session in UPDATE has been asked to end too, and must have refused.
    assert.match(await bystander.line(), /^-ERR \[SYS\/TEMP\] Server shutting down/);
    release();
    await closed;
    assert.match(await c.line(), /^\+OK .*1 messages deleted/);
    assert.equal(s.store.commits.length, 1);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 1);
    t.after(() => s.close());
  });

  it('stops accepting connections once closing', async () => {
    const s = await startTestServer();
    await s.server.close({ graceMs: 0 });
    await assert.rejects(WireClient.connect(s.port));
  });
});

/**
 * Makes every commit of `store` wait until `release()`; `entered` resolves when the first commit
 * is waiting (the session is in UPDATE).
 */
function holdCommits(store: MemoryStore): { entered: Promise<void>; release: () => void } {
  let enter!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((resolve) => {
    enter = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const open = store.open.bind(store);
  store.open = async (user) => {
    const session = await open(user);
    const commit = session.commit;
    return {
      ...session,
      commit: async (...args: Parameters<typeof commit>) => {
        enter();
        await gate;
        return commit(...args);
      },
    };
  };
  return { entered, release };
}
