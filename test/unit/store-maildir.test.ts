// MaildirStore behaviour beyond the shared contract: other MDAs' files, cached sizes, messages
// that move or vanish under a session, the deletion journal after a crash, UID state rules.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crlfLength } from '../../src/store/crlf.ts';
import { parseDovecotUidlist } from '../../src/store/dovecot-uidlist.ts';
import { writeJournal } from '../../src/store/maildir-commit.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import type { MaildropSession } from '../../src/store/types.ts';
import { parseUidState } from '../../src/store/uidlist.ts';
import { normalizeUser } from '../../src/store/user.ts';

const USER = 'carol@example.org';

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(join(tmpdir(), 'popgate-maildir-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, USER);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  return { root, dir, store: new MaildirStore(root) };
}

async function readAll(session: MaildropSession, index: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await session.read(index)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

test('files from Postfix (new/), procmail (cur/ with flags) are served in delivery-time order; tmp/ and dot files are not', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000002.V801I1M1.mx'), 'Subject: two\n\nb\n');
  await writeFile(join(dir, 'cur', '1700000001.123_0.mx:2,RS'), 'Subject: one\n\na\n');
  await writeFile(join(dir, 'new', '1700000003.M1P1.mx'), 'Subject: three\n\nc\n');
  await writeFile(join(dir, 'tmp', '1700000000.M1P1.mx'), 'half written');
  await writeFile(join(dir, 'new', '.hidden'), 'not mail');
  const session = await store.open(USER);
  assert.equal(session.messages.length, 3);
  assert.equal(await readAll(session, 0), 'Subject: one\r\n\r\na\r\n');
  assert.equal(await readAll(session, 1), 'Subject: two\r\n\r\nb\r\n');
  assert.equal(session.messages[2]!.size, crlfLength(Buffer.from('Subject: three\n\nc\n')));
  await session.release();
});

test('sizes are counted once and cached in popgate-uidlist by base name', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'a\nb\n');
  const session = await store.open(USER);
  await session.release();
  const state = parseUidState(await readFile(join(dir, 'popgate-uidlist'), 'utf8'));
  assert.deepEqual(
    state.records.map((r) => [r.base, r.fileSize, r.crlfSize]),
    [['1700000001.M1P1.mx', 4, 6]],
  );
});

test("Dovecot's ,W= size field is used without reading the file", async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx,S=4,W=6'), 'a\nb\n');
  // A W= that disagrees with the content proves the field, not a count, gave the size.
  await writeFile(join(dir, 'new', '1700000002.M1P1.mx,S=4,W=99'), 'a\nb\n');
  // An S= that does not match the file makes the W= untrusted.
  await writeFile(join(dir, 'new', '1700000003.M1P1.mx,S=5,W=99'), 'a\nb\n');
  const session = await store.open(USER);
  assert.deepEqual(
    session.messages.map((m) => m.size),
    [6, 99, 6],
  );
  await assert.rejects(readAll(session, 1), { code: 'ERR_STORE_IO' });
  await session.release();
});

test('a message another client moved from new/ to cur/ during the session is still read', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: x\n\nbody\n');
  const session = await store.open(USER);
  await rename(join(dir, 'new', '1700000001.M1P1.mx'), join(dir, 'cur', '1700000001.M1P1.mx:2,S'));
  assert.equal(await readAll(session, 0), 'Subject: x\r\n\r\nbody\r\n');
  await session.commit([0]);
  assert.deepEqual(await readdir(join(dir, 'cur')), []);
});

test('a message removed by another program during the session fails with ERR_STORE_NO_SUCH_MESSAGE, and commit still works', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'one\n');
  await writeFile(join(dir, 'new', '1700000002.M1P1.mx'), 'two\n');
  const session = await store.open(USER);
  await unlink(join(dir, 'new', '1700000001.M1P1.mx'));
  await assert.rejects(session.read(0), { code: 'ERR_STORE_NO_SUCH_MESSAGE' });
  assert.equal(await readAll(session, 1), 'two\r\n');
  await session.commit([0, 1]);
  const next = await store.open(USER);
  assert.equal(next.messages.length, 0);
  await next.release();
});

test('a deletion journal left by a crash is finished at the next open, and only those messages go', async (t) => {
  const { dir, store } = await setup(t);
  for (let i = 1; i <= 3; i++) await writeFile(join(dir, 'new', `170000000${i}.M1P1.mx`), `m${i}\n`);
  const first = await store.open(USER);
  const uids = first.messages.map((m) => m.uid);
  await first.release();
  // State after a crash right after step 1 of commit: the journal is durable, nothing unlinked.
  await writeJournal(dir, ['1700000002.M1P1.mx']);
  const second = await store.open(USER);
  assert.deepEqual(
    second.messages.map((m) => m.uid),
    [uids[0], uids[2]],
  );
  await second.release();
  assert.ok(!(await readdir(dir)).includes('popgate-commit'));
});

test('a crash before the journal is written deletes nothing (as a dropped connection)', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'm\n');
  const session = await store.open(USER);
  await writeFile(join(dir, '.popgate-commit.123.abcd'), 'popgate-commit 1\n1700000001.M1P1.mx\n'); // torn temp
  await session.release();
  const next = await store.open(USER);
  assert.equal(next.messages.length, 1);
  await next.release();
});

test('when popgate-uidlist is lost, new UIDLs are issued and none of the old ones is reused', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'm\n');
  const first = await store.open(USER);
  const old = first.messages[0]!.uid;
  await first.release();
  await unlink(join(dir, 'popgate-uidlist'));
  const second = await store.open(USER);
  assert.notEqual(second.messages[0]!.uid, old);
  await second.release();
});

test('a corrupt popgate-uidlist fails with ERR_STORE_CORRUPT instead of renumbering', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'm\n');
  await writeFile(join(dir, 'popgate-uidlist'), 'garbage\n');
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_CORRUPT' });
  // The lock was released: the operator can repair and retry at once.
  await writeFile(join(dir, 'popgate-uidlist'), 'popgate-uidlist 1 V5 N1\n');
  const session = await store.open(USER);
  assert.equal(session.messages.length, 1);
  await session.release();
});

test('dovecot-uidlist UIDs are used for the files it numbers, a P extension verbatim', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'cur', '1700000001.M1P1.mx:2,S'), 'a\n');
  await writeFile(join(dir, 'new', '1700000002.M1P1.mx'), 'b\n');
  await writeFile(join(dir, 'new', '1700000003.M1P1.mx'), 'c\n');
  await writeFile(
    join(dir, 'dovecot-uidlist'),
    '3 V1600000000 N9 Gabc\n7 :1700000001.M1P1.mx:2,S\n8 W77 Pmigrated-uidl-1 :1700000002.M1P1.mx\n',
  );
  const session = await store.open(USER);
  const [a, b, c] = session.messages;
  assert.equal(a!.uid, '00000007' + (1600000000).toString(16).padStart(8, '0'));
  assert.equal(b!.uid, 'migrated-uidl-1');
  assert.equal(b!.size, 77);
  assert.notEqual(
    c!.uid.slice(8),
    (1600000000).toString(16).padStart(8, '0'),
    'native UIDLs never share UIDVALIDITY',
  );
  await session.release();
});

test('dovecot-uidlist parsing: version 1, unknown versions, and custom pop3_uidl_format', () => {
  const v1 = parseDovecotUidlist('1 1234 3\n1 1700000001.M1P1.mx\n2 1700000002.M1P1.mx:2,S\n');
  assert.equal(v1?.records.get('1700000002.M1P1.mx')?.uidl, '00000002000004d2');
  assert.equal(parseDovecotUidlist('9 whatever\n'), undefined);
  const custom = parseDovecotUidlist('3 V255 N2\n1 :x.y\n', '%v-%u-%f');
  assert.equal(custom?.records.get('x.y')?.uidl, '255-1-x.y');
});

test('user names: normal forms and refusals', () => {
  assert.equal(normalizeUser('Alice@Example.ORG'), 'Alice@Example.ORG');
  assert.equal(normalizeUser('JOSE\u0301@exa\u0308mple.org'), 'JOS\u00c9@ex\u00e4mple.org');
  for (const bad of [
    '',
    'a/b',
    'a\\b',
    '..',
    'a..b',
    '.x',
    '-x',
    'a b',
    'a\tb',
    'a\u0085b',
    'a@b@c',
    'x'.repeat(255),
    42,
  ]) {
    assert.throws(() => normalizeUser(bad), { code: 'ERR_STORE_INVALID_USER' }, JSON.stringify(bad));
  }
});

test('a store refuses unknown options with the option name', () => {
  assert.throws(() => new MaildirStore('/x', { nope: true } as never), {
    code: 'ERR_CONFIG_UNKNOWN_KEY',
    key: 'nope',
  });
  assert.throws(() => new MaildirStore('/x', { dovecotUidlFormat: '%m' }), { code: 'ERR_CONFIG_INVALID' });
});

test('without create, a user with no Maildir gets ERR_STORE_NOT_FOUND', async (t) => {
  const { root } = await setup(t);
  const store = new MaildirStore(root, { create: false });
  await assert.rejects(store.open('nobody@example.org'), { code: 'ERR_STORE_NOT_FOUND' });
});

test('close() ends open sessions without deleting and refuses further use', async (t) => {
  const { dir, store } = await setup(t);
  await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'm\n');
  const session = await store.open(USER);
  await store.close();
  await assert.rejects(session.read(0));
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_IO' });
  const other = new MaildirStore(join(dir, '..'));
  const again = await other.open(USER);
  assert.equal(again.messages.length, 1);
  await again.release();
});
