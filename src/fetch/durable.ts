import { FetchError } from '../errors.ts';

export { fsyncDir } from '../internal/durable-fs.ts';

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
