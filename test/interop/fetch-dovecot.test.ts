// popgate's fetcher against a real Dovecot 2.3 (apt) with OAuth2: 2,000 mixed messages into a
// Maildir byte for byte, a second run that fetches nothing, new mail fetched once, --delete.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runAccount } from '../../src/fetch/run-account.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { type FixtureMessage, writeMixedMessages, writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';

const USER = 'fetch@example.test';
let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: [USER, 'del@example.test', 'nouidl@example.test'] });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-fetch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** What the Maildir file must hold: the source file, LF endings, with a final newline (POP3 always ends the last line). */
async function expectedLocal(m: FixtureMessage): Promise<Buffer> {
  const source = await readFile(m.path).catch(async () => {
    // Dovecot may have moved it to cur/ with flags.
    const dir = join(m.path, '..', '..', 'cur');
    const name = (await readdir(dir)).find((n) => n.startsWith(m.name))!;
    return readFile(join(dir, name));
  });
  const lf = Buffer.from(source.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return m.endsWithNewline ? lf : Buffer.concat([lf, Buffer.from('\n')]);
}

async function delivered(maildir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await readdir(join(maildir, 'new'))) {
    const bytes = await readFile(join(maildir, 'new', name));
    const id = /^Message-ID:\s*(\S+)/im.exec(bytes.toString('latin1'))?.[1] ?? name;
    assert.ok(!out.has(id), `duplicate delivery of ${id}`);
    out.set(id, bytes);
  }
  return out;
}

function options(d: DovecotInstance, user: string, stateDir: string, to: string) {
  return {
    account: user.split('@')[0]!,
    stateDir,
    host: d.host,
    port: d.popsPort,
    tls: 'implicit' as const,
    ca: d.caCertPem,
    servername: 'localhost',
    user,
    token: () => d.mintToken(user),
    destination: { kind: 'maildir' as const, path: to },
  };
}

test('2,000 mixed messages arrive byte-identical; a second run fetches nothing; new mail once', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const dir = await tempDir(t);
  const source = await d.maildirOf(USER);
  const messages = await writeMixedMessages(source, {
    count: 2000,
    owner: { uid: d.mailUid, gid: d.mailGid },
  });
  const to = join(dir, 'Maildir');
  const first = await runAccount(options(d, USER, join(dir, 'state'), to));
  assert.equal(first.fetched, 2000);
  const got = await delivered(to);
  assert.equal(got.size, 2000);
  for (const m of messages) {
    const bytes = got.get(m.messageId);
    assert.ok(bytes, `message ${m.index} (${m.kind}) missing`);
    assert.ok(bytes.equals(await expectedLocal(m)), `message ${m.index} (${m.kind}) differs`);
  }
  const second = await runAccount(options(d, USER, join(dir, 'state'), to));
  assert.equal(second.fetched, 0);
  assert.equal(second.onServer, 2000);
  const more = await writeUniformMessages(source, 3, 2000, {
    firstIndex: 5001,
    owner: { uid: d.mailUid, gid: d.mailGid },
  });
  const third = await runAccount(options(d, USER, join(dir, 'state'), to));
  assert.equal(third.fetched, 3);
  const final = await delivered(to);
  assert.equal(final.size, 2003);
  for (const m of more) assert.ok(final.get(m.messageId)?.equals(await expectedLocal(m)));
});

test('--delete leaves nothing on the server, and only after delivery', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const dir = await tempDir(t);
  const user = 'del@example.test';
  const source = await d.maildirOf(user);
  await writeUniformMessages(source, 50, 3000, { owner: { uid: d.mailUid, gid: d.mailGid } });
  const to = join(dir, 'Maildir');
  const report = await runAccount({ ...options(d, user, join(dir, 'state'), to), delete: true });
  assert.equal(report.fetched, 50);
  assert.equal(report.deleted, 50);
  assert.equal((await delivered(to)).size, 50);
  const again = await runAccount({ ...options(d, user, join(dir, 'state'), to), delete: true });
  assert.equal(again.onServer, 0);
});
