/**
 * Locks an mbox the way mail readers and delivery agents expect: a dotlock (`FILE.lock`, created
 * exclusively by the shared lock-file algorithm in src/internal/lock-file.ts; ours is stale when
 * its process is gone, another program's after 5 minutes) and an fcntl write lock. Node
 * has no fcntl locking, so a tiny python3 helper takes `lockf(LOCK_EX)` and holds it until its
 * stdin closes; if popgate dies, the helper sees EOF and the kernel releases the lock. Without
 * python3 only the dotlock is taken (reported once through `onWarning`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { FetchError } from '../../errors.ts';
import { waitForLock } from '../../internal/lock-file.ts';

const STALE_MS = 5 * 60 * 1000;
const HELPER = [
  'import fcntl, sys',
  "f = open(sys.argv[1], 'ab')",
  'fcntl.lockf(f, fcntl.LOCK_EX)',
  "sys.stdout.write('locked\\n'); sys.stdout.flush()",
  'sys.stdin.read()',
].join('\n');

export interface MboxLockOptions {
  readonly timeoutMs?: number;
  readonly python?: string;
  readonly onWarning?: (message: string) => void;
}

export interface HeldLock {
  release(): Promise<void>;
}

async function takeDotlock(file: string, deadline: number): Promise<(() => Promise<void>) | undefined> {
  const lockPath = `${file}.lock`;
  let lock: Awaited<ReturnType<typeof waitForLock>>;
  try {
    lock = await waitForLock(lockPath, {
      format: 'pid-first',
      mode: 0o644,
      // Another program's dotlock (procmail's, mutt's: empty or its own content) and one from
      // another host are judged by age, as those programs judge ours.
      unknownStaleMs: STALE_MS,
      foreignStaleMs: STALE_MS,
      timeoutMs: Math.max(0, deadline - Date.now()),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // No permission to create files next to the mbox (e.g. /var/mail): fcntl only, as mutt does.
    if (code === 'EACCES' || code === 'EROFS') return undefined;
    throw error;
  }
  if (!lock) {
    throw new FetchError(
      'ERR_FETCH_DELIVERY',
      `the mbox ${file} stays locked by another program (${lockPath}); try again later`,
    );
  }
  const held = lock;
  return () => held.release();
}

async function takeFcntl(
  file: string,
  deadline: number,
  python: string,
): Promise<(() => Promise<void>) | 'unavailable'> {
  const child = spawn(python, ['-c', HELPER, file], { stdio: ['pipe', 'pipe', 'ignore'] });
  const outcome = await new Promise<'locked' | 'unavailable' | 'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
    child.once('error', () => {
      clearTimeout(timer);
      resolve('unavailable');
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve('unavailable');
    });
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve('locked');
    });
  });
  if (outcome === 'locked') {
    return async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    };
  }
  child.kill('SIGKILL');
  if (outcome === 'timeout') {
    throw new FetchError(
      'ERR_FETCH_DELIVERY',
      `the mbox ${file} stays locked (fcntl) by another program; try again later`,
    );
  }
  return 'unavailable';
}

let warnedNoPython = false;

/** The system python3 (not a version-manager shim, which can take a second to start). */
function defaultPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Takes the dotlock, then the fcntl lock, of `file`. */
export async function lockMbox(file: string, options: MboxLockOptions = {}): Promise<HeldLock> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const dot = await takeDotlock(file, deadline);
  let fcntl: (() => Promise<void>) | 'unavailable';
  try {
    // The helper needs a moment to start even when the lock is free.
    fcntl = await takeFcntl(file, Math.max(deadline, Date.now() + 5000), options.python ?? defaultPython());
  } catch (error) {
    await dot?.();
    throw error;
  }
  if (fcntl === 'unavailable' && !warnedNoPython) {
    warnedNoPython = true;
    options.onWarning?.('python3 is not available: the mbox is locked with a dotlock only (no fcntl lock)');
  }
  return {
    async release() {
      if (fcntl !== 'unavailable') await fcntl();
      await dot?.();
    },
  };
}
