/**
 * Small durable-write helpers shared by the sinks and the UIDL state: fsync a file or a
 * directory, and classify "disk full" errors. A rename is durable only once its directory is
 * fsynced, so every publish step ends with {@link fsyncDir}.
 */
import { open } from 'node:fs/promises';
import { FetchError } from '../errors.ts';

/** fsync a directory so renames and creations inside it survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** True for "no space left" and "quota exceeded" errors. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Wraps a file-system error met while delivering into a typed {@link FetchError} that says what
 * to do next. The path is safe to show (it is the user's own destination).
 */
export function deliveryError(error: unknown, what: string): FetchError {
  if (error instanceof FetchError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const hint = isDiskFull(error)
    ? 'the disk is full or over quota: free some space and run popgate fetch again (nothing was deleted on the server)'
    : `${code ?? 'I/O error'}: check that the destination exists and is writable, then run popgate fetch again`;
  return new FetchError('ERR_FETCH_DELIVERY', `could not ${what}: ${hint}`, { cause: error });
}

/** Whether a process with this pid exists on this host (EPERM counts as alive). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
