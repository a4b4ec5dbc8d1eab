/**
 * A cross-process lock file (`O_CREAT|O_EXCL`) holding the owner's pid and start time. A lock
 * whose owner is gone, or older than `staleMs`, is broken. Used beside the token files so two
 * popgate processes never refresh the same account at once.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import { OAuthError } from '../../errors.ts';

export interface FileLockOptions {
  /** Give up after this long. Default 60 s. */
  readonly timeoutMs?: number;
  /** A lock older than this is considered abandoned. Default 120 s. */
  readonly staleMs?: number;
  /** Poll interval. Default 20 ms. */
  readonly pollMs?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Acquires `path`; resolves with a release function. */
export async function acquireFileLock(
  path: string,
  what: string,
  options: FileLockOptions = {},
): Promise<() => Promise<void>> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const staleMs = options.staleMs ?? 120_000;
  const pollMs = options.pollMs ?? 20;
  const token = `${process.pid} ${Date.now()} ${randomBytes(8).toString('hex')}\n`;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(token);
      } finally {
        await handle.close();
      }
      return async () => {
        const current = await readFile(path, 'utf8').catch(() => '');
        if (current === token) await unlink(path).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new OAuthError(
          'ERR_OAUTH_LOCK_TIMEOUT',
          `cannot create the lock file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    }
    const content = await readFile(path, 'utf8').catch(() => undefined);
    if (content !== undefined) {
      const [pidText, sinceText] = content.split(' ');
      const pid = Number(pidText);
      const since = Number(sinceText);
      const abandoned =
        (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) ||
        (Number.isFinite(since) && Date.now() - since > staleMs) ||
        (content.length > 0 && !content.endsWith('\n') && attempt > 50);
      if (abandoned) {
        // Re-read right before removing so a lock taken meanwhile by someone else survives.
        const again = await readFile(path, 'utf8').catch(() => undefined);
        if (again === content) await unlink(path).catch(() => {});
        continue;
      }
    }
    if (Date.now() >= deadline) {
      throw new OAuthError(
        'ERR_OAUTH_LOCK_TIMEOUT',
        `another popgate process held the lock for ${what} longer than ${Math.round(timeoutMs / 1000)} s (${path}); if no popgate runs, delete that file`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs + Math.floor(Math.random() * pollMs)));
  }
}
