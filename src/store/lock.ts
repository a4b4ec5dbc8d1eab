// Cross-process lock files, crash safe without flock(2) (which Node does not expose):
// the lock is a file created with O_CREAT|O_EXCL holding `pid host start token`. A lock whose
// owner is gone is stale and may be broken:
//   - same host: the pid no longer exists (kill(pid, 0) gives ESRCH), or it exists with another
//     start time (/proc/<pid>/stat field 22: the pid was reused), or it is our own pid but a token
//     this process does not hold (a previous process with the same pid, e.g. in a container);
//   - another host (shared storage): older than `foreignStaleMs`;
//   - unreadable or empty content (the owner died between create and write): older than 5 s.
// Breaking is serialised by a second O_EXCL file `<lock>.break`, held for a few syscalls only and
// itself considered stale after 10 s, so two processes never both remove the same stale lock and
// then both create a new one.
import { randomBytes } from 'node:crypto';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errnoOf } from './fs-util.ts';

const heldTokens = new Set<string>();
const EMPTY_STALE_MS = 5_000;
const BREAK_STALE_MS = 10_000;

export interface LockOptions {
  /** Locks written by another host are stale after this many ms (default one day). */
  readonly foreignStaleMs?: number;
  /** Called when a stale lock is broken (for a log line). */
  readonly onStaleBroken?: (info: { path: string; owner: string }) => void;
}

/** A held lock; `release()` removes the file only if it is still ours. */
export interface LockHandle {
  readonly path: string;
  release(): Promise<void>;
}

interface Owner {
  pid: number;
  host: string;
  start: string;
  token: string;
}

async function processStart(pid: number): Promise<string> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '-';
  } catch {
    return '-';
  }
}

let ownStart: Promise<string> | undefined;

function parseOwner(text: string): Owner | undefined {
  const match = /^popgate-lock 1 pid=(\d+) host=(\S+) start=(\S+) token=([0-9a-f]{32})\n$/.exec(text);
  if (!match) return undefined;
  return { pid: Number(match[1]), host: match[2]!, start: match[3]!, token: match[4]! };
}

async function isStale(text: string, mtimeMs: number, options: LockOptions): Promise<boolean> {
  const age = Date.now() - mtimeMs;
  const owner = parseOwner(text);
  if (!owner) return age > EMPTY_STALE_MS;
  if (owner.host !== hostname()) return age > (options.foreignStaleMs ?? 86_400_000);
  if (owner.pid === process.pid) return !heldTokens.has(owner.token);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if (errnoOf(error) === 'ESRCH') return true;
    // EPERM: the process exists and belongs to someone else.
  }
  const start = await processStart(owner.pid);
  return owner.start !== '-' && start !== '-' && start !== owner.start;
}

async function readLock(path: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function create(path: string): Promise<LockHandle | undefined> {
  ownStart ??= processStart(process.pid);
  const token = randomBytes(16).toString('hex');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return undefined;
    throw error;
  }
  heldTokens.add(token);
  try {
    await handle.writeFile(
      `popgate-lock 1 pid=${process.pid} host=${hostname()} start=${await ownStart} token=${token}\n`,
    );
  } finally {
    await handle.close();
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      heldTokens.delete(token);
      const current = await readLock(path);
      if (current && parseOwner(current.text)?.token === token) await unlink(path).catch(() => {});
    },
  };
}

/** Removes `path` if it is (still) the stale lock we judged, under the `.break` lock. */
async function breakStale(path: string, judged: string, options: LockOptions): Promise<void> {
  const breakPath = `${path}.break`;
  let breaker: Awaited<ReturnType<typeof open>>;
  try {
    breaker = await open(breakPath, 'wx', 0o600);
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
    const info = await stat(breakPath).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > BREAK_STALE_MS) await unlink(breakPath).catch(() => {});
    return;
  }
  try {
    await breaker.close();
    const again = await readLock(path);
    if (again && again.text === judged) {
      await unlink(path).catch(() => {});
      options.onStaleBroken?.({ path, owner: judged.trim() });
    }
  } finally {
    await unlink(breakPath).catch(() => {});
  }
}

/** Takes the lock if it is free or stale; resolves undefined when a live owner holds it. */
export async function tryLock(path: string, options: LockOptions = {}): Promise<LockHandle | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const handle = await create(path);
    if (handle) return handle;
    const current = await readLock(path);
    if (!current) continue; // released between our create and read: try again
    if (!(await isStale(current.text, current.mtimeMs, options))) return undefined;
    await breakStale(path, current.text, options);
  }
  return undefined;
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding a short-lived lock, waiting up to `timeoutMs` for it. Waiters in this process
 * queue in memory; other processes are polled with a growing delay. Resolves undefined on timeout.
 */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: LockOptions & { timeoutMs?: number } = {},
): Promise<{ value: T } | undefined> {
  const previous = queues.get(path) ?? Promise.resolve();
  const run = previous.then(async () => {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    let delay = 2;
    for (;;) {
      const handle = await tryLock(path, options);
      if (handle) {
        try {
          return { value: await fn() };
        } finally {
          await handle.release();
        }
      }
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 100);
    }
  });
  const settled = run.catch(() => undefined);
  queues.set(path, settled);
  void settled.then(() => {
    if (queues.get(path) === settled) queues.delete(path);
  });
  return run;
}
