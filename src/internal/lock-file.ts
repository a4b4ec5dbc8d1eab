/**
 * The one cross-process lock-file algorithm (maildrop locks, token-store locks, the fetch account
 * pid file off Linux, the mbox dotlock), crash safe without flock(2), which Node does not expose.
 * The lock is a file created with O_CREAT|O_EXCL holding the owner's pid, host, process start
 * time and a random token. A lock whose owner is gone is stale and may be broken:
 *   - same host: the pid no longer exists, or it exists with another start time (the pid was
 *     reused), or it is our own pid with a token this process does not hold (an earlier process
 *     with the same pid, e.g. in a container);
 *   - another host (shared storage): older than `foreignStaleMs`;
 *   - content that is not ours (empty: the owner died between create and write; or another
 *     program's lock, e.g. procmail's or mutt's `FILE.lock`): older than `unknownStaleMs`.
 * A live owner on this host is never broken by age: two holders are worse than a wait.
 * Breaking is serialised by a second O_EXCL file `<lock>.break`, held for a few syscalls only and
 * itself stale after 10 s, so two processes never both remove the same stale lock and then both
 * create a new one.
 *
 * Two spellings of the same content: `popgate-lock 1 pid=P host=H start=S token=T` (popgate's own
 * lock files) and `P H start=S token=T` (`format: 'pid-first'`, for the mbox dotlock: mail tools
 * that read a dotlock, such as liblockfile, take a leading decimal pid). A bare `P H`, as older
 * popgate dotlocks hold, is judged by its pid alone.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { pidAlive, processStartTime } from './pid.ts';

const heldTokens = new Set<string>();
const UNKNOWN_STALE_MS = 5_000;
const BREAK_STALE_MS = 10_000;

export interface LockOptions {
  /** Locks written by another host are stale after this many ms (default one day). */
  readonly foreignStaleMs?: number;
  /** Content that is not a popgate lock is stale after this many ms (default 5 s). */
  readonly unknownStaleMs?: number;
  /** `popgate` (default) or `pid-first` (the dotlock spelling, see the header). */
  readonly format?: 'popgate' | 'pid-first';
  /** File mode of a new lock (default 0o600). */
  readonly mode?: number;
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
  token: string | undefined;
}

let ownStart: Promise<string> | undefined;

function parseOwner(text: string): Owner | undefined {
  const ours = /^popgate-lock 1 pid=(\d+) host=(\S+) start=(\S+) token=([0-9a-f]{32})\n$/.exec(text);
  if (ours) return { pid: Number(ours[1]), host: ours[2]!, start: ours[3]!, token: ours[4]! };
  const pidFirst = /^(\d+) ([^\s=]+)(?: start=(\S+) token=([0-9a-f]{32}))?\n$/.exec(text);
  if (!pidFirst) return undefined;
  return { pid: Number(pidFirst[1]), host: pidFirst[2]!, start: pidFirst[3] ?? '-', token: pidFirst[4] };
}

function ownerText(format: LockOptions['format'], start: string, token: string): string {
  const pid = process.pid;
  return format === 'pid-first'
    ? `${pid} ${hostname()} start=${start} token=${token}\n`
    : `popgate-lock 1 pid=${pid} host=${hostname()} start=${start} token=${token}\n`;
}

async function isStale(text: string, mtimeMs: number, options: LockOptions): Promise<boolean> {
  const age = Date.now() - mtimeMs;
  const owner = parseOwner(text);
  if (!owner) return age > (options.unknownStaleMs ?? UNKNOWN_STALE_MS);
  if (owner.host !== hostname()) return age > (options.foreignStaleMs ?? 86_400_000);
  if (owner.pid === process.pid) return owner.token !== undefined && !heldTokens.has(owner.token);
  if (!pidAlive(owner.pid)) return true;
  const start = await processStartTime(owner.pid);
  return owner.start !== '-' && start !== '-' && start !== owner.start;
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** More than any lock this module writes; a larger file is not a lock of ours. */
const MAX_LOCK_BYTES = 1024;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Reads a lock file without trusting whoever could write its directory: a symbolic link is not
 * followed and a FIFO is not waited on (O_NOFOLLOW|O_NONBLOCK), only a regular file's first
 * octets are read. Anything else reads as empty, so it counts as unknown content: stale after
 * `unknownStaleMs` by its own mtime, then removed like an empty lock.
 */
async function readLock(path: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    try {
      handle = await open(path, READ_FLAGS);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno !== 'ELOOP' && errno !== 'EMLINK' && errno !== 'ENXIO') throw error;
      return { text: '', mtimeMs: (await lstat(path)).mtimeMs };
    }
    const info = await handle.stat();
    if (!info.isFile()) return { text: '', mtimeMs: info.mtimeMs };
    const buffer = Buffer.alloc(MAX_LOCK_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = bytesRead > MAX_LOCK_BYTES ? '' : buffer.toString('utf8', 0, bytesRead);
    return { text, mtimeMs: info.mtimeMs };
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  } finally {
    await handle?.close();
  }
}

/** Who held a lock, for a log line: parsed fields only, never the file's raw content. */
function describeOwner(text: string): string {
  const owner = parseOwner(text);
  if (!owner) return text === '' ? 'empty or not a regular file' : 'content not recognised';
  return `pid=${owner.pid} host=${owner.host}`;
}

async function create(path: string, options: LockOptions): Promise<LockHandle | undefined> {
  ownStart ??= processStartTime(process.pid);
  const token = randomBytes(16).toString('hex');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', options.mode ?? 0o600);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return undefined;
    throw error;
  }
  heldTokens.add(token);
  try {
    await handle.writeFile(ownerText(options.format, await ownStart, token));
  } finally {
    await handle.close();
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      // The token stays held until the file is gone: otherwise another caller in this process could
      // judge our lock stale, break it and take a new one that our unlink below would then remove.
      try {
        const current = await readLock(path);
        if (current && parseOwner(current.text)?.token === token) await unlink(path).catch(() => {});
      } finally {
        heldTokens.delete(token);
      }
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
      options.onStaleBroken?.({ path, owner: describeOwner(judged) });
    }
  } finally {
    await unlink(breakPath).catch(() => {});
  }
}

/** Takes the lock if it is free or stale; resolves undefined when a live owner holds it. */
export async function tryLock(path: string, options: LockOptions = {}): Promise<LockHandle | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const handle = await create(path, options);
    if (handle) return handle;
    const current = await readLock(path);
    if (!current) continue; // released between our create and read: try again
    if (!(await isStale(current.text, current.mtimeMs, options))) return undefined;
    await breakStale(path, current.text, options);
  }
  return undefined;
}

/**
 * Takes the lock, polling with a growing delay (up to `maxPollMs`, default 100) while a live owner
 * holds it; resolves undefined when `timeoutMs` (default 10 s) passes first.
 */
export async function waitForLock(
  path: string,
  options: LockOptions & { timeoutMs?: number; maxPollMs?: number } = {},
): Promise<LockHandle | undefined> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let delay = 2;
  for (;;) {
    const handle = await tryLock(path, options);
    if (handle) return handle;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(1, deadline - Date.now()))));
    delay = Math.min(delay * 2, options.maxPollMs ?? 100);
  }
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
    const handle = await waitForLock(path, options);
    if (!handle) return undefined;
    try {
      return { value: await fn() };
    } finally {
      await handle.release();
    }
  });
  const settled = run.catch(() => undefined);
  queues.set(path, settled);
  void settled.then(() => {
    if (queues.get(path) === settled) queues.delete(path);
  });
  return run;
}
