// `popgate serve` processes over a real Maildir store, on the wire (the real CLI as child
// processes, tokens from a JWKS-file issuer, TLS with the test CA):
//   - symlinks in new/ and cur/ to the server's own TLS key are neither listed nor retrievable
//     (curl), and the log names them without their content;
//   - two processes on the same Maildir: while a session on A holds the maildrop, a login on B
//     gets -ERR [IN-USE]; after A's QUIT, B logs in;
//   - SIGKILL at random moments of UPDATE (after QUIT of a session that marked most of a few
//     hundred messages): the next session, on a fresh process, finds the maildrop either fully
//     committed or untouched (UIDLs and sizes), numbered 1..n with LIST and UIDL agreeing, the
//     bytes intact, and the killed process's stale lock does not block the login.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { prng } from '../helpers/fetch-crash.ts';
import { requirePeer } from '../helpers/peers.ts';
import { prepareServe, type ServeSetup, startServe } from '../helpers/serve-process.ts';
import { WireClient, xoauth2 } from '../unit/server-helpers.ts';

async function connect(setup: ServeSetup, port: number): Promise<WireClient> {
  const client = await WireClient.connect(port, { tls: { ca: setup.certs.caCertPem } });
  assert.match(await client.line(10_000), /^\+OK/);
  return client;
}

async function login(setup: ServeSetup, port: number, user: string, token: string) {
  const client = await connect(setup, port);
  const answer = await client.command(`AUTH XOAUTH2 ${xoauth2(user, token)}`);
  return { client, answer };
}

interface Listed {
  readonly uidl: string;
  readonly size: number;
}

/** STAT, LIST and UIDL, checked against each other: numbered 1..n, same count, same total. */
async function listing(client: WireClient): Promise<Listed[]> {
  const stat = /^\+OK (\d+) (\d+)$/.exec(await client.command('STAT'));
  assert.ok(stat, 'STAT answers +OK n size');
  const [listStatus, listLines] = await client.multi('LIST');
  const [uidlStatus, uidlLines] = await client.multi('UIDL');
  assert.match(listStatus, /^\+OK/);
  assert.match(uidlStatus, /^\+OK/);
  assert.equal(listLines.length, Number(stat[1]), 'LIST and STAT count the same messages');
  assert.equal(uidlLines.length, listLines.length, 'UIDL and LIST count the same messages');
  const out: Listed[] = [];
  let total = 0;
  for (let i = 0; i < listLines.length; i++) {
    const [n, size] = listLines[i]!.split(' ');
    const [m, uidl] = uidlLines[i]!.split(' ');
    assert.equal(Number(n), i + 1, 'LIST numbers 1..n in order');
    assert.equal(Number(m), i + 1, 'UIDL numbers 1..n in order');
    out.push({ uidl: uidl!, size: Number(size) });
    total += Number(size);
  }
  assert.equal(total, Number(stat[2]), 'STAT total is the sum of LIST sizes');
  return out;
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('symlinks in new/ and cur/ to the server TLS key are neither listed nor retrievable over the wire', async (t) => {
  if (!requirePeer(t, 'curl')) return;
  const setup = await prepareServe(t);
  const user = 'eve@example.test';
  const token = await setup.mintToken(user);
  const keyPem = await readFile(setup.certs.server.keyPath, 'utf8');
  // The key's body lines go to the secret ledger: the run-level scan looks for them everywhere.
  const keyLines = keyPem.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
  for (const line of keyLines) recordTestSecret(line);
  const message = 'From: a@example.test\r\nSubject: real\r\n\r\nhello\r\n';
  const store = new MaildirStore(setup.mailRoot);
  await store.deliver(user, Buffer.from(message));
  await store.close();
  const maildir = join(setup.mailRoot, user);
  await symlink(setup.certs.server.keyPath, join(maildir, 'new', '1700000009.M1P1.evil'));
  await symlink(setup.certs.server.keyPath, join(maildir, 'cur', '1700000010.M1P1.evil:2,S'));
  const serve = await startServe(t, setup);
  const url = (path: string) => `pop3s://127.0.0.1:${serve.port}/${path}`;
  const bearer = ['-sS', '--cacert', setup.certs.caCertPath, '--oauth2-bearer', token, '-u', `${user}:`];

  const list = await curl([...bearer, url('')]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(list.stdout.trim().split(/\r?\n/), [`1 ${Buffer.byteLength(message)}`]);
  const first = await curl([...bearer, url('1')]);
  assert.equal(first.stdout, message);
  for (const n of ['2', '3']) {
    const other = await curl([...bearer, url(n)]);
    assert.notEqual(other.code, 0, `RETR ${n} must fail`);
    for (const line of keyLines) assert.ok(!other.stdout.includes(line), 'no key material on the wire');
  }
  const { client, answer } = await login(setup, serve.port, user, token);
  assert.match(answer, /^\+OK Logged in, 1 messages/);
  assert.equal((await listing(client)).length, 1);
  assert.match(await client.command('QUIT'), /^\+OK/);
  await client.waitClosed();

  const log = serve.stderr();
  assert.match(log, /not serving a Maildir entry/);
  assert.match(log, /new\/1700000009\.M1P1\.evil/);
  assert.match(log, /cur\/1700000010\.M1P1\.evil:2,S/);
  for (const line of keyLines) assert.ok(!log.includes(line), 'no key material in the log');
});

test('two serve processes on one Maildir: a session on A makes a login on B get [IN-USE] until A quits', async (t) => {
  const setup = await prepareServe(t);
  const user = 'shared@example.test';
  const token = await setup.mintToken(user);
  const store = new MaildirStore(setup.mailRoot);
  await store.deliver(user, Buffer.from('Subject: one\n\nbody\n'));
  await store.close();
  const [a, b] = await Promise.all([startServe(t, setup), startServe(t, setup)]);

  const onA = await login(setup, a.port, user, token);
  assert.match(onA.answer, /^\+OK Logged in, 1 messages/);
  const onB = await login(setup, b.port, user, token);
  assert.equal(onB.answer, '-ERR [IN-USE] The maildrop is in use by another session; try again later.');
  assert.match(await onB.client.command('QUIT'), /^\+OK/);

  assert.match(await onA.client.command('QUIT'), /^\+OK/);
  await onA.client.waitClosed();
  const again = await login(setup, b.port, user, token);
  assert.match(again.answer, /^\+OK Logged in, 1 messages/);
  // And the other way round: B now holds it, A is refused.
  const refused = await login(setup, a.port, user, token);
  assert.match(refused.answer, /^-ERR \[IN-USE\]/);
  assert.match(await again.client.command('QUIT'), /^\+OK/);
  await again.client.waitClosed();
});

/** Where a kill landed, judged from the answer received and what is on disk afterwards. */
type Phase =
  | 'before the commit point'
  | 'inside UPDATE: writing the journal'
  | 'inside UPDATE: journal on disk'
  | 'inside UPDATE: deletions done, no answer yet'
  | 'after UPDATE: +OK received';

const COMMITTED_PHASES: ReadonlySet<Phase> = new Set([
  'inside UPDATE: journal on disk',
  'inside UPDATE: deletions done, no answer yet',
  'after UPDATE: +OK received',
]);

test('SIGKILL at random moments of UPDATE: the next process finds the maildrop committed or untouched', {
  timeout: 20 * 60_000,
}, async (t) => {
  const KILLS = Number(process.env.POPGATE_UPDATE_KILLS ?? 40);
  const MESSAGES = 300;
  const seed = Number(process.env.POPGATE_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (POPGATE_CRASH_SEED to replay), ${KILLS} kills`);
  const random = prng(seed);
  const setup = await prepareServe(t);
  const user = 'kill@example.test';
  const token = await setup.mintToken(user);
  const maildir = join(setup.mailRoot, user);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(maildir, sub), { recursive: true, mode: 0o700 });
  /** The wire bytes of every message ever delivered, by its serial number (in its Subject). */
  const wire = new Map<number, string>();
  let serial = 0;
  // Deliveries as an MTA makes them (files in new/, numbered by the server at its next open);
  // not fsynced, because only the server's UPDATE is under test.
  const topUp = async (count: number) => {
    for (let i = 0; i < count; i++) {
      serial += 1;
      const body = `From: k@example.test\nSubject: m${serial}\n\n${'x'.repeat(Math.floor(random() * 400))}\n.dot\n`;
      await writeFile(join(maildir, 'new', `${1_700_000_000 + serial}.M${serial}P1.killtest`), body);
      wire.set(serial, body.replace(/\n/g, '\r\n'));
    }
  };
  const messageFiles = async () =>
    (await readdir(join(maildir, 'new'))).length + (await readdir(join(maildir, 'cur'))).length;
  const journalTemps = async () => (await readdir(maildir)).filter((n) => n.startsWith('.popgate-commit.'));
  await topUp(MESSAGES);

  /** The previous run: what the maildrop held, what it deleted, where the kill landed. */
  let previous: { before: Listed[]; deleted: Set<string>; phase: Phase } | undefined;
  let window = 0;
  let kills = 0;
  const phases = new Map<Phase, number>();
  const outcomes = { committed: 0, untouched: 0 };
  const uidlOf = new Map<number, string>();

  for (let run = 0; kills < KILLS && run < KILLS * 3; run++) {
    const serve = await startServe(t, setup);
    let { client, answer } = await login(setup, serve.port, user, token);
    // The killed process's session lock names a dead pid: it is stale and broken at once.
    assert.match(answer, /^\+OK Logged in/, `run ${run}: the previous process's lock blocked the login`);
    let listed = await listing(client);
    if (previous) {
      const seen = listed.map((m) => `${m.uidl} ${m.size}`);
      const untouched = previous.before.map((m) => `${m.uidl} ${m.size}`);
      const committed = previous.before
        .filter((m) => !previous!.deleted.has(m.uidl))
        .map((m) => `${m.uidl} ${m.size}`);
      const outcome =
        JSON.stringify(seen) === JSON.stringify(committed)
          ? 'committed'
          : JSON.stringify(seen) === JSON.stringify(untouched)
            ? 'untouched'
            : undefined;
      assert.ok(
        outcome,
        `run ${run}: after a kill (${previous.phase}) the maildrop is neither committed nor untouched`,
      );
      outcomes[outcome] += 1;
      assert.equal(
        outcome === 'committed',
        COMMITTED_PHASES.has(previous.phase),
        `run ${run}: a kill ${previous.phase} must leave the maildrop ${COMMITTED_PHASES.has(previous.phase) ? 'committed' : 'untouched'}`,
      );
    }
    if (listed.length < MESSAGES / 2) {
      assert.match(await client.command('QUIT'), /^\+OK/);
      await client.waitClosed();
      await topUp(MESSAGES - listed.length);
      ({ client, answer } = await login(setup, serve.port, user, token));
      assert.match(answer, /^\+OK Logged in/);
      listed = await listing(client);
    }
    // The bytes of one message, and its numbering, are what was delivered.
    const probe = Math.floor(random() * listed.length);
    const [retrStatus, retrLines] = await client.multi(`RETR ${probe + 1}`);
    assert.match(retrStatus, /^\+OK/);
    const probed = Number(/^Subject: m(\d+)$/m.exec(retrLines.join('\n'))?.[1]);
    assert.equal(`${retrLines.join('\r\n')}\r\n`, wire.get(probed), `run ${run}: RETR ${probe + 1} bytes`);
    assert.equal(listed[probe]!.size, wire.get(probed)!.length, `run ${run}: LIST size of ${probe + 1}`);
    if (uidlOf.has(probed)) assert.equal(listed[probe]!.uidl, uidlOf.get(probed), 'a UIDL never changes');
    uidlOf.set(probed, listed[probe]!.uidl);

    // Mark most messages, pipelined, then QUIT and kill at a random moment of UPDATE.
    const deleted = new Set<string>();
    const marks: string[] = [];
    listed.forEach((m, i) => {
      if (random() < 0.8) {
        deleted.add(m.uidl);
        marks.push(`DELE ${i + 1}\r\n`);
      }
    });
    client.write(marks.join(''));
    for (let i = 0; i < marks.length; i++) assert.match(await client.line(30_000), /^\+OK/);
    const filesBefore = await messageFiles();
    const tempsBefore = new Set(await journalTemps());
    const calibrating = run < 2;
    const sentAt = performance.now();
    client.write('QUIT\r\n');
    let answeredAt = 0;
    const quitAnswer = client.line(60_000).then(
      (line) => {
        answeredAt = performance.now();
        return line;
      },
      () => undefined,
    );
    if (calibrating) {
      assert.match((await quitAnswer) ?? '', /^\+OK/);
      window = window === 0 ? answeredAt - sentAt : (window + answeredAt - sentAt) / 2;
      serve.child.kill('SIGKILL');
    } else {
      // Up to 1.3 times the QUIT-to-answer time of runs that finished: most kills land inside
      // UPDATE, some before it starts and some after its answer.
      await new Promise((resolve) => setTimeout(resolve, random() * window * 1.3));
      serve.child.kill('SIGKILL');
      kills += 1;
    }
    await serve.exited;
    await client.waitClosed(30_000).catch(() => '');
    const quit = await quitAnswer;
    const files = await messageFiles();
    const journal = (await readdir(maildir)).includes('popgate-commit');
    const newTemp = (await journalTemps()).some((n) => !tempsBefore.has(n));
    let phase: Phase;
    if (quit?.startsWith('+OK')) phase = 'after UPDATE: +OK received';
    else if (journal) phase = 'inside UPDATE: journal on disk';
    else if (files === filesBefore - deleted.size) phase = 'inside UPDATE: deletions done, no answer yet';
    else if (files === filesBefore && newTemp) phase = 'inside UPDATE: writing the journal';
    else if (files === filesBefore) phase = 'before the commit point';
    else assert.fail(`run ${run}: ${filesBefore - files} of ${deleted.size} files deleted and no journal`);
    if (quit?.startsWith('+OK') && !calibrating) window = (window + answeredAt - sentAt) / 2; // a run that finished: follow the real pace
    if (!calibrating) phases.set(phase, (phases.get(phase) ?? 0) + 1);
    previous = { before: listed, deleted, phase };
  }

  // The last kill, checked by one more fresh process.
  const serve = await startServe(t, setup);
  const { client, answer } = await login(setup, serve.port, user, token);
  assert.match(answer, /^\+OK Logged in/);
  const listed = await listing(client);
  const expected = previous!.before.filter(
    (m) => !COMMITTED_PHASES.has(previous!.phase) || !previous!.deleted.has(m.uidl),
  );
  assert.deepEqual(listed, expected);
  outcomes[COMMITTED_PHASES.has(previous!.phase) ? 'committed' : 'untouched'] += 1;
  assert.match(await client.command('QUIT'), /^\+OK/);

  const inside = [...phases].filter(([p]) => p.startsWith('inside')).reduce((sum, [, n]) => sum + n, 0);
  t.diagnostic(
    `QUIT-to-answer window ${window.toFixed(1)} ms; kills by phase: ${JSON.stringify(Object.fromEntries(phases))}`,
  );
  t.diagnostic(
    `kills inside UPDATE ${inside}, before ${phases.get('before the commit point') ?? 0}, after ${phases.get('after UPDATE: +OK received') ?? 0}; next sessions found ${JSON.stringify(outcomes)}`,
  );
  assert.equal(kills, KILLS);
  assert.ok(inside > 0, 'at least one kill landed inside UPDATE');
});
