/**
 * The token store's per-account lock, so two popgate processes never refresh the same account at
 * once: the shared lock-file algorithm (src/internal/lock-file.ts) with a deadline and a typed
 * error.
 */
import { OAuthError } from '../../errors.ts';
import { waitForLock } from '../../internal/lock-file.ts';

export interface FileLockOptions {
  /** Give up after this long. Default 60 s. */
  readonly timeoutMs?: number;
  /** A lock written on another host (shared home directory) is abandoned after this long. Default 120 s. */
  readonly staleMs?: number;
  /** Longest poll interval. Default 20 ms. */
  readonly pollMs?: number;
}

/** Acquires `path`; resolves with a release function. */
export async function acquireFileLock(
  path: string,
  what: string,
  options: FileLockOptions = {},
): Promise<() => Promise<void>> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let handle: Awaited<ReturnType<typeof waitForLock>>;
  try {
    handle = await waitForLock(path, {
      timeoutMs,
      foreignStaleMs: options.staleMs ?? 120_000,
      maxPollMs: options.pollMs ?? 20,
    });
  } catch (error) {
    throw new OAuthError(
      'ERR_OAUTH_LOCK_TIMEOUT',
      `cannot create the lock file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (!handle) {
    throw new OAuthError(
      'ERR_OAUTH_LOCK_TIMEOUT',
      `another popgate process held the lock for ${what} longer than ${Math.round(timeoutMs / 1000)} s (${path}); if no popgate runs, delete that file`,
    );
  }
  return () => handle.release();
}
