// MaildirStore's reads: small files whole (blocking calls by default, the thread pool when
// syncReadMaxBytes is 0), large files streamed; the same bytes either way, and a file that
// changed or vanished under the session is refused, never served with a size LIST did not give.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { MaildirStore, type MaildirStoreOptions } from '../../src/store/maildir-store.ts';
import type { MaildropSession } from '../../src/store/types.ts';

const USER = 'dave@example.org';

async function setup(t: TestContext, options: MaildirStoreOptions = {}) {
  const root = await mkdtemp(join(tmpdir(), 'popgate-maildir-read-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, USER);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  return { dir, store: new MaildirStore(root, options) };
}

async function streamed(session: MaildropSession, index: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await session.read(index)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const SMALL = 'Subject: s\n\n.dot\nline\r\nlone\rcr\nno end';
const LARGE = `Subject: l\n\n${'0123456789abcdef\n'.repeat(5000)}`; // 85,012 octets: over 64 KiB

for (const [mode, options] of [
  ['blocking reads', {}],
  ['thread-pool reads (syncReadMaxBytes 0)', { syncReadMaxBytes: 0 }],
] as const) {
  describe(`MaildirStore with ${mode}`, () => {
    it('readWhole gives the bytes read streams, CRLF, exactly the listed size', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), SMALL);
      const session = await store.open(USER);
      const whole = await session.readWhole!(0);
      assert.ok(whole);
      assert.equal(whole.toString('latin1'), 'Subject: s\r\n\r\n.dot\r\nline\r\nlone\rcr\r\nno end');
      assert.equal(whole.length, session.messages[0]!.size);
      assert.ok(whole.equals(await streamed(session, 0)));
      assert.ok(whole.equals((await session.readWhole!(0))!), 'a second read gives the same bytes');
      await session.release();
    });

    it('readWhole leaves messages over 64 KiB to the stream', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), LARGE);
      const session = await store.open(USER);
      assert.equal(await session.readWhole!(0), undefined);
      const bytes = await streamed(session, 0);
      assert.equal(bytes.length, session.messages[0]!.size);
      assert.equal(bytes.toString('latin1'), LARGE.replaceAll('\n', '\r\n'));
      await session.release();
    });

    it('earlier results stay intact while later messages are read', async (t) => {
      const { dir, store } = await setup(t, options);
      for (let i = 1; i <= 5; i++)
        await writeFile(join(dir, 'new', `170000000${i}.M1P1.mx`), `m${i}\n`.repeat(i));
      const session = await store.open(USER);
      const all = await Promise.all([0, 1, 2, 3, 4].map((i) => session.readWhole!(i)));
      assert.deepEqual(
        all.map((b) => b?.toString('latin1')),
        [1, 2, 3, 4, 5].map((i) => `m${i}\r\n`.repeat(i)),
      );
      await session.release();
    });

    it('a file that grew or shrank since it was counted is refused with ERR_STORE_IO', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'abc\n');
      await writeFile(join(dir, 'new', '1700000002.M1P1.mx'), 'abcdef\n');
      const session = await store.open(USER);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'abcd\n');
      await writeFile(join(dir, 'new', '1700000002.M1P1.mx'), 'ab\n');
      await assert.rejects(session.readWhole!(0), { code: 'ERR_STORE_IO' });
      await assert.rejects(session.readWhole!(1), { code: 'ERR_STORE_IO' });
      await assert.rejects(session.read(0), { code: 'ERR_STORE_IO' });
      await session.release();
      const next = await store.open(USER);
      assert.deepEqual(
        next.messages.map((m) => m.size),
        [6, 4],
        're-counted when the session ended',
      );
      await next.release();
    });

    it('a file of the same size but with other line ends is refused, not served short', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'a\nb\n');
      const session = await store.open(USER);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'a\r\nb');
      await assert.rejects(session.readWhole!(0), { code: 'ERR_STORE_IO' });
      await session.release();
    });

    it('a file another client moved to cur/ is still read whole', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'moved\n');
      const session = await store.open(USER);
      await rename(join(dir, 'new', '1700000001.M1P1.mx'), join(dir, 'cur', '1700000001.M1P1.mx:2,S'));
      assert.equal((await session.readWhole!(0))?.toString('latin1'), 'moved\r\n');
      await session.release();
    });

    it('a removed file fails with ERR_STORE_NO_SUCH_MESSAGE', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'gone\n');
      const session = await store.open(USER);
      await unlink(join(dir, 'new', '1700000001.M1P1.mx'));
      await assert.rejects(session.readWhole!(0), { code: 'ERR_STORE_NO_SUCH_MESSAGE' });
      await session.release();
    });

    it('an index outside the session and a released session are refused', async (t) => {
      const { dir, store } = await setup(t, options);
      await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'x\n');
      const session = await store.open(USER);
      await assert.rejects(session.readWhole!(1), { code: 'ERR_STORE_NO_SUCH_MESSAGE' });
      await session.release();
      await assert.rejects(session.readWhole!(0), { code: 'ERR_STORE_IO' });
    });
  });
}

it('syncReadMaxBytes must be a non-negative integer', () => {
  for (const bad of [-1, 1.5, Number.NaN, '1' as unknown as number]) {
    assert.throws(() => new MaildirStore('/x', { syncReadMaxBytes: bad }), {
      code: 'ERR_CONFIG_INVALID',
      key: 'syncReadMaxBytes',
    });
  }
});
