import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockAccount } from '../../src/fetch/lock.ts';
import { UidlState } from '../../src/fetch/state.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function sample(path: string): Promise<void> {
  const state = await UidlState.open(path);
  await state.recordIntents([{ uidl: 'a', key: { k: 1 } }]);
  await state.recordDelivered([{ uidl: 'a', firstSeen: 1000, size: 10, messageId: '<m@x>' }]);
  await state.recordIntents([{ uidl: 'b', key: { k: 2 } }]);
  await state.recordDelivered([{ uidl: 'c', firstSeen: 2000, size: 20 }]);
  await state.recordExpunged(['c']);
  await state.close();
}

test('state survives a reopen: delivered, pending intents and expunged entries', async (t) => {
  const path = join(await tempDir(t), 'acct', 'state.jsonl');
  await sample(path);
  const state = await UidlState.open(path);
  assert.equal(state.has('a'), true);
  assert.deepEqual(state.get('a'), { firstSeen: 1000, size: 10, messageId: '<m@x>' });
  assert.equal(state.has('b'), false);
  assert.equal(state.has('c'), false);
  assert.deepEqual(state.pendingIntents(), [{ uidl: 'b', key: { k: 2 } }]);
  await state.close();
});

test('a journal cut at every byte loads as a prefix of the records, never an error', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'state.jsonl');
  await sample(path);
  const full = await readFile(path);
  for (let cut = 0; cut <= full.length; cut++) {
    const copy = join(dir, `cut-${cut}`);
    await writeFile(copy, full.subarray(0, cut));
    const state = await UidlState.open(copy);
    // Once the first D is complete, 'a' is known; before, it is not.
    const firstD = full.indexOf('\n', full.indexOf('"t":"D"')) + 1;
    assert.equal(state.has('a'), cut >= firstD, `cut at ${cut}`);
    // The torn tail was cut off: appending now yields a clean journal.
    await state.recordDelivered([{ uidl: 'z', firstSeen: 1, size: 1 }]);
    await state.close();
    const again = await UidlState.open(copy);
    assert.equal(again.has('z'), true);
    await again.close();
    await rm(copy);
  }
});

test('a zero-filled tail (power cut after the size grew) is cut off', async (t) => {
  const path = join(await tempDir(t), 'state.jsonl');
  await sample(path);
  await appendFile(path, Buffer.alloc(300));
  const state = await UidlState.open(path);
  assert.equal(state.has('a'), true);
  await state.close();
});

test('damage before the last record is ERR_FETCH_STATE, and the file is left alone', async (t) => {
  const path = join(await tempDir(t), 'state.jsonl');
  await sample(path);
  const text = await readFile(path, 'utf8');
  const damaged = text.replace('"s":10', '"s":11');
  await writeFile(path, damaged);
  await assert.rejects(UidlState.open(path), { code: 'ERR_FETCH_STATE', message: /line 2/ });
  assert.equal(await readFile(path, 'utf8'), damaged);
});

test('compaction keeps exactly the live entries', async (t) => {
  const path = join(await tempDir(t), 'state.jsonl');
  await sample(path);
  const state = await UidlState.open(path);
  await state.compact();
  await state.recordDelivered([{ uidl: 'd', firstSeen: 3, size: 3 }]);
  await state.close();
  const again = await UidlState.open(path);
  assert.deepEqual([...again.entries()].map(([u]) => u).sort(), ['a', 'd']);
  assert.deepEqual(again.pendingIntents(), [{ uidl: 'b', key: { k: 2 } }]);
  assert.equal(again.recordCount, 3);
  await again.close();
});

test('a closed state refuses appends with ERR_FETCH_STATE', async (t) => {
  const path = join(await tempDir(t), 'state.jsonl');
  const state = await UidlState.open(path);
  await state.close();
  await assert.rejects(state.recordDelivered([{ uidl: 'x', firstSeen: 1, size: 1 }]), {
    code: 'ERR_FETCH_STATE',
  });
});

test('the account lock is exclusive and released on release()', async (t) => {
  const dir = await tempDir(t);
  const lock = await lockAccount(dir, 'work');
  await assert.rejects(lockAccount(dir, 'work'), {
    code: 'ERR_FETCH_LOCKED',
    message: new RegExp(`process ${process.pid}`),
  });
  await lock.release();
  const again = await lockAccount(dir, 'work');
  await again.release();
});

test('a waiting fetch gets the lock once the holder releases it', async (t) => {
  const dir = await tempDir(t);
  const lock = await lockAccount(dir, 'work');
  const waiting = lockAccount(dir, 'work', { waitMs: 5000 });
  setTimeout(() => void lock.release(), 100);
  const second = await waiting;
  await second.release();
});
