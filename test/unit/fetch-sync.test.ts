import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { MailboxSession, RetrievedMessage, ServerMessage } from '../../src/fetch/session.ts';
import { CommandSink } from '../../src/fetch/sinks/command.ts';
import { MaildirSink } from '../../src/fetch/sinks/maildir.ts';
import { UidlState } from '../../src/fetch/state.ts';
import { syncAccount } from '../../src/fetch/sync.ts';

/** An in-memory maildrop with RFC 1939 semantics: DELE marks, QUIT commits, a drop deletes nothing. */
class FakeDrop {
  messages: { uidl: string; body: string }[] = [];
  sessions = 0;
  add(uidl: string, body: string) {
    this.messages.push({ uidl, body });
  }
  open(options: { failAfter?: number } = {}): MailboxSession & { quitted: boolean } {
    this.sessions++;
    const snapshot = [...this.messages];
    const marked = new Set<number>();
    const drop = this;
    let retrieved = 0;
    return {
      quitted: false,
      async listing(): Promise<ServerMessage[]> {
        return snapshot.map((m, i) => ({
          number: i + 1,
          size: Buffer.byteLength(m.body.replace(/\n/g, '\r\n')),
          uidl: m.uidl,
        }));
      },
      async *retrieveAll(numbers: readonly number[]): AsyncIterable<RetrievedMessage> {
        for (const n of numbers) {
          if (options.failAfter !== undefined && retrieved >= options.failAfter) {
            throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
          }
          retrieved++;
          yield {
            number: n,
            stream: Readable.from([Buffer.from(snapshot[n - 1]!.body.replace(/\n/g, '\r\n'))]),
          };
        }
      },
      async delete(numbers: readonly number[]) {
        for (const n of numbers) marked.add(n);
      },
      async quit() {
        this.quitted = true;
        drop.messages = snapshot.filter((_, i) => !marked.has(i + 1));
      },
      destroy() {},
    };
  }
}

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-sync-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sink = new MaildirSink(join(dir, 'Maildir'));
  await sink.open();
  const state = await UidlState.open(join(dir, 'state', 'state.jsonl'));
  t.after(() => state.close());
  const delivered = async () => {
    const names = await readdir(join(dir, 'Maildir', 'new'));
    return (await Promise.all(names.map((n) => readFile(join(dir, 'Maildir', 'new', n), 'utf8')))).sort();
  };
  return { dir, sink, state, delivered };
}

test('a second run fetches nothing; new mail is fetched once', async (t) => {
  const { sink, state, delivered } = await setup(t);
  const drop = new FakeDrop();
  for (let i = 0; i < 10; i++) drop.add(`u${i}`, `Subject: ${i}\n\nbody ${i}\n`);
  const first = await syncAccount(drop.open(), { account: 'a', state, sink, batchMessages: 3 });
  assert.equal(first.fetched, 10);
  const second = await syncAccount(drop.open(), { account: 'a', state, sink });
  assert.equal(second.fetched, 0);
  drop.add('u10', 'Subject: 10\n\nbody 10\n');
  const third = await syncAccount(drop.open(), { account: 'a', state, sink });
  assert.equal(third.fetched, 1);
  assert.equal((await delivered()).length, 11);
});

test('--delete removes only recorded messages, at QUIT', async (t) => {
  const { sink, state } = await setup(t);
  const drop = new FakeDrop();
  for (let i = 0; i < 5; i++) drop.add(`u${i}`, `m ${i}\n`);
  drop.add('big', `${'x'.repeat(500)}\n`);
  const report = await syncAccount(drop.open(), { account: 'a', state, sink, delete: true, maxSize: 100 });
  assert.equal(report.fetched, 5);
  assert.deepEqual(
    report.skippedTooLarge.map((s) => s.uidl),
    ['big'],
  );
  assert.deepEqual(
    drop.messages.map((m) => m.uidl),
    ['big'],
  );
  assert.equal(state.has('u0'), false, 'expunged UIDLs are forgotten');
});

test('--limit fetches the first N and defers the rest', async (t) => {
  const { sink, state } = await setup(t);
  const drop = new FakeDrop();
  for (let i = 0; i < 5; i++) drop.add(`u${i}`, `m ${i}\n`);
  const report = await syncAccount(drop.open(), { account: 'a', state, sink, limit: 2 });
  assert.equal(report.fetched, 2);
  assert.equal(report.deferred, 3);
  assert.equal(state.has('u0') && state.has('u1') && !state.has('u2'), true);
});

test('delete_after_days deletes only messages first fetched long enough ago', async (t) => {
  const { sink, state } = await setup(t);
  const drop = new FakeDrop();
  drop.add('old', 'old\n');
  let clock = Date.UTC(2025, 0, 1);
  await syncAccount(drop.open(), { account: 'a', state, sink, now: () => clock });
  clock += 3 * 86_400_000;
  drop.add('new', 'new\n');
  const report = await syncAccount(drop.open(), {
    account: 'a',
    state,
    sink,
    deleteAfterDays: 2,
    now: () => clock,
  });
  assert.equal(report.deleted, 1);
  assert.deepEqual(
    drop.messages.map((m) => m.uidl),
    ['new'],
  );
});

test('a dropped connection commits what was complete, deletes nothing, and the rerun finishes', async (t) => {
  const { sink, state, delivered } = await setup(t);
  const drop = new FakeDrop();
  for (let i = 0; i < 8; i++) drop.add(`u${i}`, `m ${i}\n`);
  await assert.rejects(
    syncAccount(drop.open({ failAfter: 5 }), { account: 'a', state, sink, delete: true, batchMessages: 2 }),
    {
      code: 'ECONNRESET',
    },
  );
  assert.equal(drop.messages.length, 8);
  assert.equal((await delivered()).length, 5);
  const report = await syncAccount(drop.open(), { account: 'a', state, sink, delete: true });
  assert.equal(report.fetched, 3);
  assert.equal(drop.messages.length, 0);
  assert.equal((await delivered()).length, 8);
});

test('a failing delivery command: not recorded, not deleted, reported; others go through', async (t) => {
  const { dir, state } = await setup(t);
  const out = join(dir, 'out');
  const sink = new CommandSink(
    `if [ "$POPGATE_UIDL" = bad ]; then echo refused >&2; exit 1; fi; cat >> ${out}`,
    {
      spoolDir: join(dir, 'spool'),
      env: process.env,
    },
  );
  await sink.open();
  const drop = new FakeDrop();
  drop.add('good1', 'one\n');
  drop.add('bad', 'two\n');
  drop.add('good2', 'three\n');
  const report = await syncAccount(drop.open(), { account: 'a', state, sink, delete: true });
  assert.equal(report.fetched, 2);
  assert.deepEqual(
    report.failed.map((f) => f.uidl),
    ['bad'],
  );
  assert.match(report.failed[0]!.error.message, /refused/);
  assert.deepEqual(
    drop.messages.map((m) => m.uidl),
    ['bad'],
  );
  assert.equal(state.has('bad'), false);
  assert.equal(await readFile(out, 'utf8'), 'one\nthree\n');
});

test('an abort signal finishes the message in flight, records it, and QUITs', async (t) => {
  const { sink, state } = await setup(t);
  const drop = new FakeDrop();
  for (let i = 0; i < 6; i++) drop.add(`u${i}`, `m ${i}\n`);
  const controller = new AbortController();
  const session = drop.open();
  const report = await syncAccount(session, {
    account: 'a',
    state,
    sink,
    delete: true,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.bytesDone > 0) controller.abort();
    },
  });
  assert.equal(report.stopped, true);
  assert.equal(report.fetched, 1);
  assert.equal(session.quitted, true);
  assert.equal(drop.messages.length, 5);
});
