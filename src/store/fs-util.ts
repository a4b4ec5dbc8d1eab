// Durable file-system steps shared by the Maildir store: fsync of a directory (so a create,
// rename or unlink survives a crash), atomic replace (temp + fsync + rename + dir fsync), and the
// mapping of system errors to StoreError codes.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StoreError } from '../errors.ts';

/** Flushes a directory's entries (a new, renamed or removed name) to disk. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `data` so a crash leaves either the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await fsyncDir(dirname(path));
}

/** The errno code of a Node system error, if any. */
export function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** Wraps a file-system failure in a StoreError: ERR_STORE_FULL for ENOSPC/EDQUOT, else ERR_STORE_IO. */
export function storeIoError(what: string, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  const errno = errnoOf(error);
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new StoreError('ERR_STORE_FULL', `${what}: the disk is full or over quota; free space and retry`, {
      cause: error,
    });
  }
  return new StoreError(
    'ERR_STORE_IO',
    `${what}: ${errno ?? 'I/O error'}; check the maildrop's disk and permissions`,
    {
      cause: error,
    },
  );
}
