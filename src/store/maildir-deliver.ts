// Atomic Maildir delivery (https://cr.yp.to/proto/maildir.html, "How a message is delivered"):
//   1. create tmp/<unique> exclusively, write the message with LF line endings, fsync, close;
//   2. link it to new/<unique>,S=<size>,W=<crlf size> (Dovecot's size fields), unlink the tmp name;
//   3. fsync new/ so the name survives a crash;
//   4. number it in popgate-uidlist (under the state lock).
// Only then does the delivery resolve with the UIDL. On any failure the tmp file is removed; if
// numbering fails after step 3, the file is removed from new/ again so a retry by the MTA cannot
// produce a duplicate. ENOSPC and EDQUOT reject with ERR_STORE_FULL.
import { link, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StoreError } from '../errors.ts';
import { LfNormalizer } from './crlf.ts';
import { errnoOf, fsyncDir, storeIoError } from './fs-util.ts';
import { uniqueName } from './maildir-names.ts';
import type { UidRecord } from './uidlist.ts';

export interface DeliverOptions {
  readonly maxMessageSize: number;
  /** Give the new file to this owner before it is linked into new/ (root delivering for a user). */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Numbers the durable file; returns its UIDL. */
  readonly record: (record: Omit<UidRecord, 'uidl'>) => Promise<string>;
}

const WRITE_BUFFER = 256 * 1024;

async function* chunksOf(message: Readable | Uint8Array): AsyncGenerator<Uint8Array> {
  if (message instanceof Uint8Array) {
    yield message;
    return;
  }
  for await (const chunk of message) {
    yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Uint8Array);
  }
}

/** Delivers `message` into the Maildir at `dir` (which must have tmp/, new/ and cur/). */
export async function deliverToMaildir(
  dir: string,
  message: Readable | Uint8Array,
  options: DeliverOptions,
): Promise<string> {
  const unique = uniqueName();
  const tmpPath = join(dir, 'tmp', unique);
  const normalizer = new LfNormalizer();
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(tmpPath, 'wx', 0o600);
    let pending: Buffer[] = [];
    let pendingSize = 0;
    const flush = async () => {
      if (pendingSize === 0) return;
      await handle!.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingSize));
      pending = [];
      pendingSize = 0;
    };
    const take = async (out: Buffer) => {
      if (normalizer.fileSize > options.maxMessageSize) {
        throw new StoreError(
          'ERR_STORE_INVALID_MESSAGE',
          `the message is larger than the maximum of ${options.maxMessageSize} octets`,
        );
      }
      if (out.length === 0) return;
      pending.push(out);
      pendingSize += out.length;
      if (pendingSize >= WRITE_BUFFER) await flush();
    };
    for await (const chunk of chunksOf(message)) await take(normalizer.feed(chunk));
    await take(normalizer.end());
    if (normalizer.fileSize === 0)
      throw new StoreError('ERR_STORE_INVALID_MESSAGE', 'the message is empty; nothing was delivered');
    await flush();
    if (options.owner) await handle.chown(options.owner.uid, options.owner.gid);
    await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(tmpPath).catch(() => {});
    throw storeIoError('writing the message', error);
  }

  const base = `${unique},S=${normalizer.fileSize},W=${normalizer.crlfSize}`;
  const finalPath = join(dir, 'new', base);
  try {
    try {
      await link(tmpPath, finalPath);
      await unlink(tmpPath);
    } catch (error) {
      // Some file systems have no hard links; rename is atomic too (the name is unique).
      const code = errnoOf(error);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw error;
      await rename(tmpPath, finalPath);
    }
    await fsyncDir(join(dir, 'new'));
  } catch (error) {
    await unlink(finalPath).catch(() => {});
    await unlink(tmpPath).catch(() => {});
    throw storeIoError('moving the message into new/', error);
  }

  try {
    return await options.record({ base, fileSize: normalizer.fileSize, crlfSize: normalizer.crlfSize });
  } catch (error) {
    await unlink(finalPath).catch(() => {});
    await fsyncDir(join(dir, 'new')).catch(() => {});
    throw storeIoError('numbering the message', error);
  }
}
