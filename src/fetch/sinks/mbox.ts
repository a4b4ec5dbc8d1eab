/**
 * mbox delivery (mboxrd): each message is a `From ` separator line, the message with LF line
 * endings and `>From ` quoting, and an empty line. Appends happen under a dotlock + fcntl lock;
 * the intent records the offset, length and SHA-256 of what is about to be appended, so after a
 * crash popgate can tell a complete append from a torn one (which it truncates away).
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { FetchError } from '../../errors.ts';
import { deliveryError, fsyncDir } from '../durable.ts';
import { lockMbox, type MboxLockOptions } from './mbox-lock.ts';
import { Spool, type SpoolFile } from './spool.ts';
import type { Intent, MessageInfo, PublishOutcome, RecoveryResult, Sink, Staged } from './types.ts';

interface MboxStaged extends Staged {
  readonly spool: SpoolFile;
}

interface MboxKey {
  readonly off: number;
  readonly len: number;
  /** Length of the separator line; the message starts at `off + body`. */
  readonly body: number;
  /** Octets of the message itself, and their SHA-256. */
  readonly n: number;
  readonly sha: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `From MAILER-DAEMON Thu Nov 27 21:06:00 2025` (asctime, UTC). */
export function fromLine(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const time = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  return `From MAILER-DAEMON ${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${day} ${time} ${date.getUTCFullYear()}\n`;
}

export interface MboxSinkOptions extends MboxLockOptions {
  /** Directory for scratch copies (the account's state directory). */
  readonly spoolDir: string;
}

export class MboxSink implements Sink {
  readonly kind = 'mbox' as const;
  readonly description: string;
  readonly file: string;
  readonly #spool: Spool;
  readonly #lockOptions: MboxLockOptions;

  constructor(file: string, options: MboxSinkOptions) {
    this.file = file;
    this.description = `mbox ${file}`;
    this.#spool = new Spool(options.spoolDir);
    this.#lockOptions = options;
  }

  async open(): Promise<void> {
    await this.#spool.open();
    try {
      const handle = await open(this.file, 'a', 0o600);
      await handle.close();
      await fsyncDir(dirname(this.file));
    } catch (error) {
      throw deliveryError(error, `open the mbox ${this.file}`);
    }
  }

  async stage(message: Readable, info: MessageInfo): Promise<Staged> {
    const spool = await this.#spool.write(message, { lf: true, mboxQuote: true });
    const staged: MboxStaged = { info, bytes: spool.bytes, messageId: spool.messageId, spool };
    return staged;
  }

  async publish(
    batch: readonly Staged[],
    announce: (intents: readonly Intent[]) => Promise<void>,
  ): Promise<PublishOutcome[]> {
    const items = batch as readonly MboxStaged[];
    const lock = await lockMbox(this.file, this.#lockOptions);
    const handle = await open(this.file, 'r+').catch((error: unknown) => {
      void lock.release();
      throw deliveryError(error, `open the mbox ${this.file}`);
    });
    const outcomes: PublishOutcome[] = items.map(() => ({ ok: true }));
    try {
      let offset = (await handle.stat()).size;
      if (offset > 0) {
        // A separator must start a line: repair a file that does not end with a newline.
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, offset - 1);
        if (last[0] !== 10) {
          await handle.write('\n', offset);
          offset++;
        }
      }
      const now = new Date();
      const plan = items.map((s) => {
        const from = Buffer.from(fromLine(now));
        const tail = s.spool.endsWithNewline || s.spool.bytes === 0 ? '\n' : '\n\n';
        const key: MboxKey = {
          off: offset,
          len: from.length + s.spool.bytes + tail.length,
          body: from.length,
          n: s.spool.bytes,
          sha: s.spool.sha256,
        };
        offset += key.len;
        return { s, from, tail, key };
      });
      await announce(plan.map((p) => ({ uidl: p.s.info.uidl, key: p.key })));
      let failed: FetchError | undefined;
      for (const [i, p] of plan.entries()) {
        if (failed) {
          outcomes[i] = { ok: false, error: failed };
          continue;
        }
        try {
          let at = p.key.off;
          at += (await handle.write(p.from, 0, p.from.length, at)).bytesWritten;
          for await (const chunk of createReadStream(p.s.spool.path)) {
            at += (await handle.write(chunk as Buffer, 0, (chunk as Buffer).length, at)).bytesWritten;
          }
          await handle.write(p.tail, at);
        } catch (error) {
          // Cut the torn append off so the mbox stays well formed; later messages are not written.
          await handle.truncate(p.key.off).catch(() => undefined);
          failed = deliveryError(error, `append to the mbox ${this.file}`);
          outcomes[i] = { ok: false, error: failed };
        }
      }
      await handle.sync();
    } catch (error) {
      throw deliveryError(error, `append to the mbox ${this.file}`);
    } finally {
      await handle.close().catch(() => undefined);
      await lock.release();
      for (const s of items) await this.#spool.remove(s.spool);
    }
    return outcomes;
  }

  async discard(staged: Staged): Promise<void> {
    await this.#spool.remove((staged as MboxStaged).spool);
  }

  async recover(key: unknown): Promise<RecoveryResult> {
    const k = key as Partial<MboxKey> | null;
    if (
      typeof k?.off !== 'number' ||
      typeof k.len !== 'number' ||
      typeof k.body !== 'number' ||
      typeof k.n !== 'number' ||
      typeof k.sha !== 'string'
    ) {
      throw new FetchError(
        'ERR_FETCH_STATE',
        'the fetch state holds an mbox intent that is not valid; the state file is damaged',
      );
    }
    const lock = await lockMbox(this.file, this.#lockOptions);
    try {
      const handle = await open(this.file, 'r+');
      try {
        const size = (await handle.stat()).size;
        if (size <= k.off) return 'absent';
        if (size >= k.off + k.len) {
          const hash = createHash('sha256');
          const from = Buffer.alloc(5);
          await handle.read(from, 0, 5, k.off);
          if (k.n > 0) {
            const stream = handle.createReadStream({
              start: k.off + k.body,
              end: k.off + k.body + k.n - 1,
              autoClose: false,
            });
            for await (const chunk of stream) hash.update(chunk as Buffer);
          }
          return from.toString('latin1') === 'From ' && hash.digest('hex') === k.sha ? 'delivered' : 'absent';
        }
        // Torn append by the crashed run (it held the lock, nobody wrote after it): cut it off.
        await handle.truncate(k.off);
        await handle.sync();
        return 'absent';
      } finally {
        await handle.close();
      }
    } finally {
      await lock.release();
    }
  }

  async close(): Promise<void> {}
}
