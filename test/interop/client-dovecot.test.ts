// Interop proofs of issue 2 against a real Dovecot 2.3 (test/helpers/dovecot.ts): XOAUTH2 and
// OAUTHBEARER over implicit TLS and STLS; expired, forged and other-user tokens refused with the
// right typed error; 2,000 mixed messages byte-identical; flat memory for a 50 MB message.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, type TestContext, test } from 'node:test';
import { createSigningKey } from '../../dev/jwt-keys.ts';
import { Pop3Client, type Pop3TlsMode } from '../../src/client/index.ts';
import { Pop3Error } from '../../src/errors.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import {
  type FixtureMessage,
  writeLargeAttachmentMessage,
  writeMixedMessages,
} from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';

const ALICE = 'alice@example.test';
const MIXED = 'mixed@example.test';
const BIG = 'big@example.test';

let instance: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  // Maildir base names as UIDLs map each message back to its fixture file.
  instance ??= startDovecot({ users: [ALICE, MIXED, BIG], uidlFormat: '%f' });
  return instance;
}
after(async () => {
  if (instance) await (await instance).stop();
});

async function client(t: TestContext, d: DovecotInstance, tls: Pop3TlsMode = 'implicit') {
  const c = new Pop3Client({
    host: d.host,
    port: tls === 'implicit' ? d.popsPort : d.popPort,
    tls,
    ca: d.caCertPem,
    servername: 'localhost',
    timeouts: { command: 60_000 },
  });
  t.after(() => c.close());
  await c.connect();
  return c;
}

for (const tls of ['implicit', 'starttls'] as const) {
  for (const mechanism of ['XOAUTH2', 'OAUTHBEARER'] as const) {
    test(`${mechanism} with a minted token logs in over ${tls} TLS`, async (t) => {
      if (!requirePeer(t, 'dovecot')) return;
      const d = await dovecot();
      const c = await client(t, d, tls);
      assert.equal(c.secure, true);
      assert.ok(c.capabilities?.sasl.includes(mechanism));
      assert.ok(c.capabilities?.pipelining);
      await c.authenticate({ mechanism, user: ALICE, token: await d.mintToken(ALICE) });
      assert.equal(c.state, 'transaction');
      assert.equal((await c.stat()).count, 0);
      await c.quit();
    });
  }
}

test('an expired token is refused with ERR_POP3_AUTH_FAILED [AUTH] and the decoded error challenge', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  for (const mechanism of ['OAUTHBEARER', 'XOAUTH2'] as const) {
    const c = await client(t, d);
    const token = await d.mintToken(ALICE, { expiresIn: -300 });
    await assert.rejects(
      c.authenticate({ mechanism, user: ALICE, token }),
      (e) =>
        e instanceof Pop3Error &&
        e.code === 'ERR_POP3_AUTH_FAILED' &&
        e.responseCode === 'AUTH' &&
        typeof e.saslError?.status === 'string' &&
        !e.message.includes(token),
    );
    assert.equal(c.state, 'authorization');
  }
});

test('a token signed by a key Dovecot does not trust is refused with ERR_POP3_AUTH_FAILED', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const forger = await createSigningKey({ alg: d.signingKey.alg, kid: d.signingKey.kid });
  const c = await client(t, d);
  await assert.rejects(
    c.authenticate({
      mechanism: 'OAUTHBEARER',
      user: ALICE,
      token: await d.mintToken(ALICE, { signWith: forger }),
    }),
    (e) => e instanceof Pop3Error && e.code === 'ERR_POP3_AUTH_FAILED' && e.responseCode === 'AUTH',
  );
});

test("another user's token is refused with ERR_POP3_AUTH_FAILED", async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const c = await client(t, d);
  await assert.rejects(
    c.authenticate({ mechanism: 'XOAUTH2', user: ALICE, token: await d.mintToken('mallory@example.test') }),
    (e) => e instanceof Pop3Error && e.code === 'ERR_POP3_AUTH_FAILED' && e.responseCode === 'AUTH',
  );
});

test('a token provider whose first token is refused is asked once to refresh, and the retry logs in', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const c = await client(t, d, 'starttls');
  const asked: boolean[] = [];
  await c.authenticate({
    mechanism: 'OAUTHBEARER',
    user: ALICE,
    token: async ({ forceRefresh }) => {
      asked.push(forceRefresh);
      return d.mintToken(ALICE, forceRefresh ? {} : { expiresIn: -60 });
    },
  });
  assert.deepEqual(asked, [false, true]);
  assert.equal(c.state, 'transaction');
});

async function mapByUidl(c: Pop3Client, fixtures: readonly FixtureMessage[]) {
  const byName = new Map(fixtures.map((f) => [f.name, f]));
  const uidls = await c.uidl();
  return uidls.map(({ number, uid }) => {
    const fixture = byName.get(uid.split(':')[0]!);
    assert.ok(fixture, `UIDL ${uid} matches a fixture file`);
    return { number, fixture };
  });
}

test('2,000 mixed messages are retrieved pipelined, byte-identical to the Maildir after LF->CRLF', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const maildir = await d.maildirOf(MIXED);
  const fixtures = await writeMixedMessages(maildir, { owner: { uid: d.mailUid, gid: d.mailGid } });
  const c = await client(t, d);
  await c.authenticate({ mechanism: 'XOAUTH2', user: MIXED, token: await d.mintToken(MIXED) });
  const listed = await c.list();
  assert.equal(listed.length, 2000);
  const order = await mapByUidl(c, fixtures);
  const sizeOf = new Map(listed.map((l) => [l.number, l.size]));
  let checked = 0;
  const expected = new Map(order.map((o) => [o.number, o.fixture]));
  for await (const { number, stream } of c.retrieveMany(order.map((o) => o.number))) {
    const fixture = expected.get(number)!;
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    assert.equal(sizeOf.get(number), fixture.wireSize, `LIST size of ${fixture.kind} #${fixture.index}`);
    assert.equal(size, fixture.retrievedSize, `size of ${fixture.kind} #${fixture.index}`);
    assert.equal(hash.digest('hex'), fixture.retrievedSha256, `bytes of ${fixture.kind} #${fixture.index}`);
    checked++;
  }
  assert.equal(checked, 2000);
  const kinds = new Set(fixtures.map((f) => f.kind));
  for (const kind of ['dots', 'utf8', 'latin1', 'no-final-newline', 'ends-with-dot-line'] as const) {
    assert.ok(kinds.has(kind), `the set includes ${kind}`);
  }
  await c.quit();
});

test('a 50 MB attachment streams byte-identical with flat client memory', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const maildir = await d.maildirOf(BIG);
  const fixture = await writeLargeAttachmentMessage(maildir, { owner: { uid: d.mailUid, gid: d.mailGid } });
  const c = await client(t, d);
  await c.authenticate({ mechanism: 'OAUTHBEARER', user: BIG, token: await d.mintToken(BIG) });
  const [only] = await c.list();
  assert.equal(only?.size, fixture.wireSize);
  global.gc?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakBuffers = base.arrayBuffers;
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await c.retrieve(1)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
    // Slow the consumer now and then so backpressure, not speed, keeps memory flat.
    if ((size & 0x3fffff) < (chunk as Buffer).length) {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
      await new Promise((r) => setImmediate(r));
    }
  }
  assert.equal(size, fixture.retrievedSize);
  assert.equal(hash.digest('hex'), fixture.retrievedSha256);
  const growth = peakBuffers - base.arrayBuffers;
  t.diagnostic(
    `message ${(size / 1e6).toFixed(1)} MB; rss +${((peakRss - base.rss) / 1e6).toFixed(1)} MB, buffers +${(growth / 1e6).toFixed(1)} MB`,
  );
  assert.ok(growth < 32 * 1024 * 1024, `buffers grew by ${growth} bytes for a ${size}-byte message`);
  assert.ok(peakRss - base.rss < 48 * 1024 * 1024, `rss grew by ${peakRss - base.rss} bytes`);
  await c.quit();
});
