// The UPDATE outcome of the Maildir store (docs/store.md, "Deletion and crash semantics"): the
// journal is the commit point. A failure before it deletes nothing and rejects; a failure after
// it (the UID state cannot be written) still deleted the messages, so commit resolves
// `deferred`, the server answers +OK, and the next open finishes the bookkeeping. Faults are
// real: the state lock held by a live owner, a directory where the journal must go.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { tryLock } from '../../src/internal/lock-file.ts';
import { JOURNAL_FILE, retractJournal, writeJournal } from '../../src/store/maildir-commit.ts';
import { MaildirStore, STATE_LOCK_FILE } from '../../src/store/maildir-store.ts';
import { startTestServer } from './server-helpers.ts';

const USER = 'alice@example.test';

async function setup(t: TestContext) {
  const root = await mkdtemp(join(tmpdir(), 'popgate-commit-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const warnings: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn(_fields: Record<string, unknown>, message?: string) {
      warnings.push(message ?? '');
    },
    error() {},
  };
  // A short state-lock wait: the fault below holds that lock for the whole commit.
  const store = new MaildirStore(root, { stateLockTimeoutMs: 100, logger });
  t.after(() => store.close());
  const uids: string[] = [];
  for (let i = 1; i <= 3; i++)
    uids.push(await store.deliver(USER, Buffer.from(`Subject: m${i}\n\nbody ${i}\n`)));
  const dir = store.maildirOf(USER);
  /** Holds the UID state lock as a live owner would (another process mid-delivery, say). */
  const holdStateLock = async () => {
    const held = await tryLock(join(dir, STATE_LOCK_FILE));
    assert.ok(held, 'took the state lock');
    return held;
  };
  const messageFiles = async () => (await readdir(join(dir, 'new'))).length;
  return { root, dir, store, uids, warnings, holdStateLock, messageFiles };
}

describe('Maildir UPDATE outcome', () => {
  it('a UID state write that fails after the journal resolves deferred: the messages are gone, the next open finishes', async (t) => {
    const { dir, store, uids, warnings, holdStateLock, messageFiles } = await setup(t);
    const session = await store.open(USER);
    const held = await holdStateLock();
    const result = await session.commit([0, 2]);
    assert.equal(result.outcome, 'deferred');
    assert.equal(result.deleted, 2);
    assert.equal(result.outcome === 'deferred' ? result.error.code : '', 'ERR_STORE_LOCKED');
    assert.equal(await messageFiles(), 1, 'the deleted files are gone');
    assert.ok((await readdir(dir)).includes(JOURNAL_FILE), 'the journal stays for the next open');
    assert.ok(warnings.some((w) => /UPDATE committed; its bookkeeping failed/.test(w)));
    await held.release();
    const next = await store.open(USER);
    assert.deepEqual(
      next.messages.map((m) => m.uid),
      [uids[1]],
      'the undeleted message keeps its UIDL',
    );
    await next.release();
    assert.ok(!(await readdir(dir)).includes(JOURNAL_FILE), 'the next open finished the journal');
    assert.doesNotMatch(await readFile(join(dir, 'popgate-uidlist'), 'utf8'), new RegExp(uids[0]!));
  });

  it('a journal that cannot be written rejects the commit and deletes nothing', async (t) => {
    const { dir, store, uids, messageFiles } = await setup(t);
    const session = await store.open(USER);
    // A non-empty directory where the journal must be renamed to: rename(2) fails.
    await mkdir(join(dir, JOURNAL_FILE));
    await writeFile(join(dir, JOURNAL_FILE, 'x'), 'x');
    await assert.rejects(session.commit([0, 1]), { code: 'ERR_STORE_IO' });
    assert.equal(await messageFiles(), 3);
    await rm(join(dir, JOURNAL_FILE), { recursive: true });
    const next = await store.open(USER);
    assert.deepEqual(
      next.messages.map((m) => m.uid),
      uids,
    );
    await next.release();
  });

  it('a journal that reached the directory before its write failed is taken back', async (t) => {
    const { dir } = await setup(t);
    await writeJournal(dir, ['a', 'b']);
    assert.equal(await retractJournal(dir, ['a', 'b']), true);
    assert.ok(!(await readdir(dir)).includes(JOURNAL_FILE));
    // Another commit's journal is not this one's to remove.
    await writeJournal(dir, ['c']);
    assert.equal(await retractJournal(dir, ['a', 'b']), true);
    assert.ok((await readdir(dir)).includes(JOURNAL_FILE));
  });

  it('QUIT answers +OK with the count when the deletions committed but the UID state write failed', async (t) => {
    const { root, store, uids, holdStateLock, messageFiles } = await setup(t);
    const server = await startTestServer({ store });
    t.after(() => server.close());
    const c = await server.login(USER);
    assert.match(await c.command('DELE 1'), /^\+OK/);
    assert.match(await c.command('DELE 2'), /^\+OK/);
    const held = await holdStateLock();
    // RFC 1939 §6: -ERR "some deleted messages not removed" only when they were not removed.
    assert.equal(await c.command('QUIT'), '+OK Logging out, 2 messages deleted.');
    await c.waitClosed();
    assert.equal(await messageFiles(), 1);
    await held.release();
    const after = new MaildirStore(root);
    const next = await after.open(USER);
    assert.deepEqual(
      next.messages.map((m) => m.uid),
      [uids[2]],
    );
    await next.release();
    await after.close();
  });

  it('QUIT answers -ERR and keeps every message when the journal cannot be written', async (t) => {
    const { dir, store, messageFiles } = await setup(t);
    const server = await startTestServer({ store });
    t.after(() => server.close());
    const c = await server.login(USER);
    assert.match(await c.command('DELE 1'), /^\+OK/);
    await mkdir(join(dir, JOURNAL_FILE));
    await writeFile(join(dir, JOURNAL_FILE, 'x'), 'x');
    assert.match(
      await c.command('QUIT'),
      /^-ERR \[SYS\/TEMP\] Some deleted messages could not be removed; none were/,
    );
    await c.waitClosed();
    assert.equal(await messageFiles(), 3);
  });
});
