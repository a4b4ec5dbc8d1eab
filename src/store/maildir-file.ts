// Opening files inside a Maildir without trusting what its owner put there (docs/security.md,
// "Maildir files"). Whoever can write into new/ or cur/ (a shell user owning the Maildir, a
// delivery program they control) must not make the server read anything they could not:
//   - no symbolic link is followed (O_NOFOLLOW on the last component; listing skips them too);
//   - no open waits on a FIFO (O_NONBLOCK: a FIFO opens at once, and fstat then refuses it);
//   - only a regular file is read (fstat after the open, so a swap after the listing is caught);
//   - a message file must belong to the Maildir's owner: a hard link to a file of another user
//     (O_NOFOLLOW cannot see one) is refused. Dovecot gets the same effect by reading mail as the
//     mail user; popgate serves every maildrop from one process, so it checks the owner instead.
import { closeSync, constants, type Dirent, fstatSync, openSync, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { StoreError } from '../errors.ts';
import { errnoOf } from './fs-util.ts';

/** Read-only, never following a final symbolic link, never blocking on a FIFO. */
export const SAFE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Why an entry of new/ or cur/ is not served. */
export type UnsafeReason =
  | 'symbolic link'
  | 'fifo'
  | 'socket'
  | 'directory'
  | 'device'
  | 'not a regular file'
  | 'owned by another user';

/** The inode a message file was seen as (a swap between listing and reading changes it). */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** What is wrong with an entry's type (a directory entry or an lstat/fstat), if anything. */
export function typeProblem(entry: Dirent | Stats): UnsafeReason | undefined {
  if (entry.isFile()) return undefined;
  if (entry.isSymbolicLink()) return 'symbolic link';
  if (entry.isFIFO()) return 'fifo';
  if (entry.isSocket()) return 'socket';
  if (entry.isDirectory()) return 'directory';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'device';
  return 'not a regular file';
}

/** What is wrong with a message file's stats: its type, or an owner other than `owner`. */
export function messageFileProblem(info: Stats, owner: number | undefined): UnsafeReason | undefined {
  return (
    typeProblem(info) ?? (owner !== undefined && info.uid !== owner ? 'owned by another user' : undefined)
  );
}

/** The errno an O_NOFOLLOW|O_NONBLOCK open of an unsafe entry fails with, as a reason. */
function openProblem(error: unknown): UnsafeReason | undefined {
  const errno = errnoOf(error);
  // Linux and macOS: ELOOP for a final symlink under O_NOFOLLOW; FreeBSD: EMLINK. A socket: ENXIO.
  if (errno === 'ELOOP' || errno === 'EMLINK') return 'symbolic link';
  if (errno === 'ENXIO') return 'socket';
  return undefined;
}

export type OpenedMessage<T> =
  | { readonly file: T; readonly stats: Stats }
  | { readonly unsafe: UnsafeReason };

/**
 * Opens a message file for reading if it is a regular file owned by `owner` (undefined: any
 * owner); else closes it again and says why. Other errors (ENOENT, EACCES, ...) are thrown.
 */
export async function openMessageFile(
  path: string,
  owner: number | undefined,
): Promise<OpenedMessage<FileHandle>> {
  let handle: FileHandle;
  try {
    handle = await open(path, SAFE_OPEN_FLAGS);
  } catch (error) {
    const unsafe = openProblem(error);
    if (unsafe) return { unsafe };
    throw error;
  }
  let stats: Stats;
  try {
    stats = await handle.stat();
  } catch (error) {
    await handle.close();
    throw error;
  }
  const unsafe = messageFileProblem(stats, owner);
  if (unsafe) {
    await handle.close();
    return { unsafe };
  }
  return { file: handle, stats };
}

/** {@link openMessageFile} with blocking calls (the small-message fast path). */
export function openMessageFileSync(path: string, owner: number | undefined): OpenedMessage<number> {
  let fd: number;
  try {
    fd = openSync(path, SAFE_OPEN_FLAGS);
  } catch (error) {
    const unsafe = openProblem(error);
    if (unsafe) return { unsafe };
    throw error;
  }
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  const unsafe = messageFileProblem(stats, owner);
  if (unsafe) {
    closeSync(fd);
    return { unsafe };
  }
  return { file: fd, stats };
}

/**
 * Reads one of the store's state files (popgate-uidlist, the journal, dovecot-uidlist, ...) as
 * UTF-8 with the same care: a symbolic link, FIFO or anything but a regular file there is refused
 * with ERR_STORE_UNSAFE_FILE rather than followed or waited on. ENOENT is thrown as is.
 */
export async function readStateFile(path: string, name: string): Promise<string> {
  const opened = await openMessageFile(path, undefined);
  if ('unsafe' in opened) throw unsafeStateFile(name, opened.unsafe);
  try {
    return await opened.file.readFile('utf8');
  } finally {
    await opened.file.close();
  }
}

function unsafeStateFile(name: string, reason: UnsafeReason): StoreError {
  return new StoreError(
    'ERR_STORE_UNSAFE_FILE',
    `the maildrop's ${name} is a ${reason}, not a regular file; it is not read. Remove it (popgate writes a new one)`,
  );
}
