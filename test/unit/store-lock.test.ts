// The per-maildrop lock across processes: exclusive while its owner lives, and never wedged by an
// owner that died (SIGKILL, crash, pid reuse, an old lock from another host).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MaildirStore, SESSION_LOCK_FILE } from '../../src/store/maildir-store.ts';

const USER = 'dave@example.org';
const STORE_MODULE = new URL('../../src/store/maildir-store.ts', import.meta.url).pathname;

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(join(tmpdir(), 'popgate-lock-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, USER);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  return { root, dir, lockPath: join(dir, SESSION_LOCK_FILE), store: new MaildirStore(root) };
}

async function startTime(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19]!;
}

function lockText(pid: number, start: string, host = hostname()): string {
  return `popgate-lock 1 pid=${pid} host=${host} start=${start} token=${randomBytes(16).toString('hex')}\n`;
}

function sleeper(t: { after: (fn: () => void) => void }): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
  });
  return child;
}

async function openAndRelease(store: MaildirStore): Promise<void> {
  const session = await store.open(USER);
  await session.release();
}

test('a lock held by a live process on this host refuses the open with ERR_STORE_LOCKED', async (t) => {
  const { lockPath, store } = await setup(t);
  const child = sleeper(t);
  await writeFile(lockPath, lockText(child.pid!, await startTime(child.pid!)));
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_LOCKED' });
});

test('a lock whose process is gone is broken and the open succeeds', async (t) => {
  const { lockPath, store } = await setup(t);
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  await writeFile(lockPath, lockText(child.pid!, '1'));
  await openAndRelease(store);
});

test('a lock whose pid now belongs to another process (pid reuse) is stale', async (t) => {
  const { lockPath, store } = await setup(t);
  const child = sleeper(t);
  await writeFile(lockPath, lockText(child.pid!, String(Number(await startTime(child.pid!)) - 1)));
  await openAndRelease(store);
});

test('a lock with our own pid that this process does not hold is left from an earlier life and is stale', async (t) => {
  const { lockPath, store } = await setup(t);
  await writeFile(lockPath, lockText(process.pid, await startTime(process.pid)));
  await openAndRelease(store);
});

test('a lock from another host holds until it is older than foreignLockStaleMs', async (t) => {
  const { root, lockPath, store } = await setup(t);
  await writeFile(lockPath, lockText(1, '1', 'elsewhere.example'));
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_LOCKED' });
  const old = new Date(Date.now() - 2 * 3600_000);
  await utimes(lockPath, old, old);
  await openAndRelease(new MaildirStore(root, { foreignLockStaleMs: 3600_000 }));
});

test('an empty lock file (owner died before writing it) holds briefly, then is stale', async (t) => {
  const { lockPath, store } = await setup(t);
  await writeFile(lockPath, '');
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_LOCKED' });
  const old = new Date(Date.now() - 60_000);
  await utimes(lockPath, old, old);
  await openAndRelease(store);
});

test('another process holding the maildrop locks it out, and its SIGKILL does not wedge the maildrop', async (t) => {
  const { root, store } = await setup(t);
  const script = join(root, 'holder.mjs');
  await writeFile(
    script,
    `import { MaildirStore } from ${JSON.stringify(STORE_MODULE)};\n` +
      `const session = await new MaildirStore(${JSON.stringify(root)}).open(${JSON.stringify(USER)});\n` +
      `process.stdout.write('held\\n');\nsetTimeout(() => session.release(), 60000);\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('held')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
  await assert.rejects(store.open(USER), { code: 'ERR_STORE_LOCKED' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  await openAndRelease(store);
});
