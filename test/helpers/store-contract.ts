// The maildrop store contract (architecture.md R4: the server owns no storage; every backend passes one
// shared suite, as oidc-provider's adapters do). Usage, in a test file:
//
//   runStoreContract('MaildirStore', async () => {
//     const root = await mkdtemp(join(tmpdir(), 'popgate-store-'));
//     return { store: new MaildirStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
//   });
//
// `makeStore` returns a fresh, empty store each time; `reopen` (optional) returns a second store
// over the same data, as another process would see it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import type { MaildropSession, MaildropStore } from '../../src/store/types.ts';

export interface ContractStore {
  readonly store: MaildropStore;
  /** A second store instance over the same data (another server process). */
  readonly reopen?: () => Promise<MaildropStore>;
  cleanup(): Promise<void>;
}

const USER = 'alice@example.org';

async function readAll(session: MaildropSession, index: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await session.read(index)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function crlf(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8');
}

function message(n: number, extra = ''): string {
  return `From: sender${n}@example.net\nTo: ${USER}\nSubject: message ${n}\n\nBody of message ${n}.\n${extra}`;
}

async function withStore(makeStore: () => Promise<ContractStore>, fn: (c: ContractStore) => Promise<void>) {
  const c = await makeStore();
  try {
    await fn(c);
  } finally {
    await c.store.close().catch(() => {});
    await c.cleanup();
  }
}

function isCode(code: Parameters<typeof isPopgateError>[1]) {
  return (error: unknown) => {
    assert.ok(
      isPopgateError(error, code),
      `expected ${code}, got ${String((error as { code?: string })?.code ?? error)}`,
    );
    return true;
  };
}

/** Registers the contract tests for one backend. */
export function runStoreContract(name: string, makeStore: () => Promise<ContractStore>): void {
  const run = (title: string, fn: (c: ContractStore) => Promise<void>) =>
    test(title, () => withStore(makeStore, fn));

  describe(`${name} passes the maildrop store contract`, () => {
    run('a user with no mail opens an empty maildrop', async ({ store }) => {
      const session = await store.open(USER);
      assert.equal(session.messages.length, 0);
      await session.release();
    });

    run(
      'delivered messages appear in the next open in delivery order with the UIDs deliver returned',
      async ({ store }) => {
        const uids = [];
        for (let i = 1; i <= 5; i++) uids.push(await store.deliver(USER, Buffer.from(message(i))));
        const session = await store.open(USER);
        assert.deepEqual(
          session.messages.map((m) => m.uid),
          uids,
        );
        for (let i = 0; i < 5; i++) assert.deepEqual(await readAll(session, i), crlf(message(i + 1)));
        await session.release();
      },
    );

    run('sizes are the exact octet count of the CRLF bytes read returns', async ({ store }) => {
      const bodies = ['a\nb\n', 'crlf\r\nalready\r\n', 'no final newline', 'lone\rcr\n', '\n\n\n.\n..\n'];
      for (const body of bodies) await store.deliver(USER, Buffer.from(`Subject: s\n\n${body}`));
      const session = await store.open(USER);
      for (let i = 0; i < bodies.length; i++) {
        const bytes = await readAll(session, i);
        assert.equal(session.messages[i]!.size, bytes.length, `message ${i + 1}`);
        assert.ok(!/(?<!\r)\n/.test(bytes.toString('latin1')), 'no bare LF on the wire');
      }
      await session.release();
    });

    run(
      'UIDs are valid POP3 unique-ids, unique, and stable across sessions and store instances',
      async (c) => {
        for (let i = 1; i <= 4; i++) await c.store.deliver(USER, Buffer.from(message(i)));
        const first = await c.store.open(USER);
        const uids = first.messages.map((m) => m.uid);
        await first.release();
        for (const uid of uids) assert.match(uid, /^[\x21-\x7e]{1,70}$/);
        assert.equal(new Set(uids).size, uids.length);
        const second = await c.store.open(USER);
        assert.deepEqual(
          second.messages.map((m) => m.uid),
          uids,
        );
        await second.release();
        if (c.reopen) {
          const other = await c.reopen();
          const third = await other.open(USER);
          assert.deepEqual(
            third.messages.map((m) => m.uid),
            uids,
          );
          await third.release();
          await other.close();
        }
      },
    );

    run('message numbers stay fixed for the session while mail arrives', async ({ store }) => {
      await store.deliver(USER, Buffer.from(message(1)));
      const session = await store.open(USER);
      const late = await store.deliver(USER, Buffer.from(message(2)));
      assert.equal(session.messages.length, 1);
      assert.deepEqual(await readAll(session, 0), crlf(message(1)));
      await session.release();
      const next = await store.open(USER);
      assert.equal(next.messages.length, 2);
      assert.equal(next.messages[1]!.uid, late);
      await next.release();
    });

    run('commit deletes exactly the marked messages and the rest keep their UIDs', async ({ store }) => {
      for (let i = 1; i <= 5; i++) await store.deliver(USER, Buffer.from(message(i)));
      const session = await store.open(USER);
      const uids = session.messages.map((m) => m.uid);
      const result = await session.commit([1, 3, 3]);
      assert.deepEqual(result, { outcome: 'committed', deleted: 2 }, 'resolves with what it deleted');
      const after = await store.open(USER);
      assert.deepEqual(
        after.messages.map((m) => m.uid),
        [uids[0], uids[2], uids[4]],
      );
      assert.deepEqual(await readAll(after, 1), crlf(message(3)));
      await after.release();
    });

    run('commit with nothing marked and release delete nothing', async ({ store }) => {
      for (let i = 1; i <= 3; i++) await store.deliver(USER, Buffer.from(message(i)));
      const a = await store.open(USER);
      await a.release();
      const b = await store.open(USER);
      await b.commit([]);
      const c = await store.open(USER);
      assert.equal(c.messages.length, 3);
      await c.release();
    });

    run('a second open of a locked maildrop fails with ERR_STORE_LOCKED until the first ends', async (c) => {
      const held = await c.store.open(USER);
      await assert.rejects(c.store.open(USER), isCode('ERR_STORE_LOCKED'));
      if (c.reopen) {
        const other = await c.reopen();
        await assert.rejects(other.open(USER), isCode('ERR_STORE_LOCKED'));
        await other.close();
      }
      await held.release();
      const again = await c.store.open(USER);
      await again.release();
    });

    run('the lock is per maildrop: another user opens freely', async ({ store }) => {
      const a = await store.open(USER);
      const b = await store.open('bob@example.org');
      await b.release();
      await a.release();
    });

    run(
      'user names are NFC-normalised with their case kept, and unsafe names are refused with ERR_STORE_INVALID_USER',
      async ({ store }) => {
        // Case belongs to whoever names the user (a `sub` is case-sensitive): the store keeps it.
        const uid = await store.deliver('Jose\u0301-AbC', Buffer.from(message(1)));
        const session = await store.open('Jos\u00e9-AbC');
        assert.equal(session.user, 'Jos\u00e9-AbC');
        assert.equal(session.messages[0]?.uid, uid);
        await session.release();
        for (const bad of ['', '../etc', 'a/b', 'x\ny', '..', '.hidden', 'a\0b', 'sp ace']) {
          await assert.rejects(store.open(bad), isCode('ERR_STORE_INVALID_USER'), JSON.stringify(bad));
          await assert.rejects(store.deliver(bad, Buffer.from('x\n')), isCode('ERR_STORE_INVALID_USER'));
        }
      },
    );

    run('concurrent deliveries all land, each with its own UID', async ({ store }) => {
      const count = 24;
      const uids = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          store.deliver(USER, Readable.from([Buffer.from(message(i + 1))])),
        ),
      );
      assert.equal(new Set(uids).size, count);
      const session = await store.open(USER);
      assert.deepEqual(new Set(session.messages.map((m) => m.uid)), new Set(uids));
      const bodies = new Set<string>();
      for (let i = 0; i < count; i++) bodies.add((await readAll(session, i)).toString('utf8'));
      for (let i = 1; i <= count; i++) assert.ok(bodies.has(crlf(message(i)).toString('utf8')));
      await session.release();
    });

    run('a deleted UID is never given to a later message', async ({ store }) => {
      const first = await store.deliver(USER, Buffer.from(message(1)));
      const session = await store.open(USER);
      await session.commit([0]);
      const second = await store.deliver(USER, Buffer.from(message(2)));
      assert.notEqual(second, first);
    });

    run(
      'an empty message is refused with ERR_STORE_INVALID_MESSAGE and nothing is delivered',
      async ({ store }) => {
        await assert.rejects(store.deliver(USER, Buffer.alloc(0)), isCode('ERR_STORE_INVALID_MESSAGE'));
        const session = await store.open(USER);
        assert.equal(session.messages.length, 0);
        await session.release();
      },
    );

    run(
      'reading a message number that does not exist fails with ERR_STORE_NO_SUCH_MESSAGE',
      async ({ store }) => {
        await store.deliver(USER, Buffer.from(message(1)));
        const session = await store.open(USER);
        await assert.rejects(session.read(1), isCode('ERR_STORE_NO_SUCH_MESSAGE'));
        await assert.rejects(session.read(-1), isCode('ERR_STORE_NO_SUCH_MESSAGE'));
        await session.release();
      },
    );

    run('a session that ended can no longer read, and a repeated release is harmless', async ({ store }) => {
      await store.deliver(USER, Buffer.from(message(1)));
      const session = await store.open(USER);
      await session.release();
      await session.release();
      await assert.rejects(session.read(0));
    });

    run('an aborted signal stops open and read', async ({ store }) => {
      await store.deliver(USER, Buffer.from(message(1)));
      await assert.rejects(store.open(USER, { signal: AbortSignal.abort() }));
      const session = await store.open(USER);
      await assert.rejects(session.read(0, { signal: AbortSignal.abort() }));
      await session.release();
    });

    run('a big message is delivered and read back as a stream with the exact size', async ({ store }) => {
      const lines = 300_000; // about 30 MB
      const line = Buffer.from(`${'x'.repeat(98)}\n`);
      const source = Readable.from(
        (function* () {
          for (let i = 0; i < lines; i += 1000) yield Buffer.concat(Array.from({ length: 1000 }, () => line));
        })(),
      );
      await store.deliver(USER, source);
      const session = await store.open(USER);
      assert.equal(session.messages[0]!.size, lines * 100);
      const hash = createHash('sha256');
      let total = 0;
      let largest = 0;
      for await (const chunk of await session.read(0)) {
        hash.update(chunk as Buffer);
        total += (chunk as Buffer).length;
        largest = Math.max(largest, (chunk as Buffer).length);
      }
      assert.equal(total, lines * 100);
      assert.ok(largest <= 1024 * 1024, `read delivered a ${largest}-octet chunk: it must stream`);
      const expected = createHash('sha256');
      const wire = Buffer.from(`${'x'.repeat(98)}\r\n`);
      for (let i = 0; i < lines; i++) expected.update(wire);
      assert.equal(hash.digest('hex'), expected.digest('hex'));
      await session.release();
    });
  });
}
