import { lstat, mkdir, stat } from 'node:fs/promises';
import { TokenStoreError } from '../../errors.ts';
import { writeFileAtomic as writeDurably } from '../../internal/durable-fs.ts';

const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/** Creates `dir` (0700) when missing; refuses an existing one that others can read. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_IO',
      `cannot create ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  await checkPrivateDir(dir);
}

export async function checkPrivateDir(dir: string): Promise<void> {
  const info = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
    throw new TokenStoreError('ERR_TOKEN_STORE_IO', `cannot read ${dir}: ${error.code ?? 'error'}`);
  });
  if (!info.isDirectory())
    throw new TokenStoreError('ERR_TOKEN_STORE_PERMISSIONS', `${dir} is not a directory`);
  if (uid !== undefined && info.uid !== uid) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_PERMISSIONS',
      `${dir} belongs to another user (uid ${info.uid}); token directories must be yours`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_PERMISSIONS',
      `${dir} has mode ${octal(info.mode)}, so others may read tokens; run chmod 700 ${dir} (and consider logging in again)`,
    );
  }
}

/** Checks an existing secret file: a regular file of ours with mode 0600 or tighter. */
export async function checkPrivateFile(file: string): Promise<void> {
  const info = await lstat(file);
  if (!info.isFile())
    throw new TokenStoreError('ERR_TOKEN_STORE_PERMISSIONS', `${file} is not a regular file`);
  if (uid !== undefined && info.uid !== uid) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_PERMISSIONS',
      `${file} belongs to another user (uid ${info.uid})`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_PERMISSIONS',
      `${file} has mode ${octal(info.mode)}, so others may read it; run chmod 600 ${file} (and consider logging in again)`,
    );
  }
}

/** Writes `data` to `file` atomically with mode 0600 (src/internal/durable-fs.ts), as a typed error on failure. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  try {
    await writeDurably(file, data, 0o600);
  } catch (error) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_IO',
      `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
