// The one lock-file algorithm (src/internal/lock-file.ts) in the spellings its users need: the
// mbox dotlock keeps the pid first and judges other mail programs' locks by age.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tryLock, waitForLock } from '../../src/internal/lock-file.ts';

async function lockPath(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-lockfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'inbox.lock');
}

test('a pid-first lock starts with our pid and host, as dotlock readers expect', async (t) => {
  const path = await lockPath(t);
  const lock = await tryLock(path, { format: 'pid-first' });
  assert.ok(lock);
  assert.match(
    await readFile(path, 'utf8'),
    new RegExp(`^${process.pid} ${hostname()} start=\\S+ token=[0-9a-f]{32}\\n$`),
  );
  await lock.release();
});

test("another program's dotlock (empty, or procmail's 0) holds until it is older than unknownStaleMs", async (t) => {
  const path = await lockPath(t);
  for (const content of ['', '0']) {
    await writeFile(path, content);
    assert.equal(await tryLock(path, { unknownStaleMs: 300_000 }), undefined);
    const old = new Date(Date.now() - 600_000);
    await utimes(path, old, old);
    const lock = await tryLock(path, { unknownStaleMs: 300_000 });
    assert.ok(lock);
    await lock.release();
  }
});

test('a bare "pid host" lock is judged by its pid', async (t) => {
  const path = await lockPath(t);
  await writeFile(path, `${process.pid} ${hostname()}\n`);
  assert.equal(await tryLock(path), undefined);
  await writeFile(path, `999999999 ${hostname()}\n`);
  const lock = await tryLock(path);
  assert.ok(lock);
  await lock.release();
});

test('concurrent waiters in one process hold the lock one at a time', async (t) => {
  const path = await lockPath(t);
  let inside = 0;
  let maxInside = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const lock = await waitForLock(path, { timeoutMs: 10_000 });
      assert.ok(lock);
      inside++;
      maxInside = Math.max(maxInside, inside);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inside--;
      await lock.release();
    }),
  );
  assert.equal(maxInside, 1);
});
