/**
 * A private spool for sinks that must know a message's final bytes before touching the
 * destination (mbox needs its length and checksum for the intent; a delivery command needs a
 * replayable stdin). Files live in the account's state directory, which only the holder of the
 * account lock uses, so `open()` may clear it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isPopgateError } from '../../errors.ts';
import { deliveryError } from '../durable.ts';
import { LocalForm, type LocalFormOptions } from './transform.ts';

export interface SpoolFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly messageId: string | undefined;
  readonly endsWithNewline: boolean;
}

export class Spool {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) await unlink(join(this.dir, name)).catch(() => undefined);
  }

  /** Writes `message` through {@link LocalForm} into a spool file (not fsynced: it is a scratch copy). */
  async write(message: Readable, form: LocalFormOptions): Promise<SpoolFile> {
    const path = join(this.dir, `${Date.now()}-${randomBytes(6).toString('hex')}`);
    const handle = await open(path, 'wx', 0o600).catch((error: unknown) => {
      message.resume();
      throw deliveryError(error, `create a spool file in ${this.dir}`);
    });
    const local = new LocalForm(form);
    const hash = createHash('sha256');
    try {
      message.on('error', (error) => local.destroy(error));
      for await (const chunk of message.pipe(local)) {
        hash.update(chunk as Buffer);
        await handle.write(chunk as Buffer);
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      if (isPopgateError(error)) throw error;
      throw deliveryError(error, `write the spool file ${path}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
    return {
      path,
      bytes: local.bytes,
      sha256: hash.digest('hex'),
      messageId: local.messageId,
      endsWithNewline: local.endsWithNewline,
    };
  }

  async remove(file: SpoolFile): Promise<void> {
    await unlink(file.path).catch(() => undefined);
  }
}
