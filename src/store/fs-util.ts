// The Maildir store's file-system steps: the shared durable writes (src/internal/durable-fs.ts) and the
// mapping of system errors to StoreError codes.
import { StoreError } from '../errors.ts';

export { fsyncDir, writeFileAtomic } from '../internal/durable-fs.ts';

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
