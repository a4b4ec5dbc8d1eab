// One opened, locked Maildir maildrop (RFC 1939 TRANSACTION and UPDATE states).
import { closeSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, pipeline, Readable } from 'node:stream';
import { StoreError } from '../errors.ts';
import type { LockHandle } from '../internal/lock-file.ts';
import { CrlfEncoder, crlfCopy, toCrlf } from './crlf.ts';
import { errnoOf, storeIoError } from './fs-util.ts';
import { clearJournal, removeFiles, writeJournal } from './maildir-commit.ts';
import { listMaildir, type MaildirFile } from './maildir-scan.ts';
import type { MaildropMessage, MaildropSession } from './types.ts';
import type { UidRecord } from './uidlist.ts';

/** What the session needs from its store: the state update run under the state lock. */
export interface SessionHost {
  /** Drops deleted records from the UID state and re-counts records found wrong. */
  updateState(dir: string, deleted: ReadonlySet<string>, recount: ReadonlySet<string>): Promise<void>;
  /** Called once when the session ends (commit or release). */
  ended(session: MaildirSession): void;
}

type SessionState = 'open' | 'committing' | 'closed';

/** Messages up to this size are read in one go; larger ones stream in chunks of this size. */
const SMALL_MESSAGE = 64 * 1024;

/**
 * The blocking reads' buffer, shared: they run to completion on the one JavaScript thread, and
 * their result is a converted copy. One octet more than the largest file, to see growth.
 */
let scratch: Buffer | undefined;

/** How the session reads message files (from MaildirStoreOptions). */
export interface ReadPolicy {
  /**
   * Files up to this many octets are read with blocking calls on the event loop (0: never).
   * See {@link MaildirSession.readWhole}.
   */
  readonly syncReadMaxBytes: number;
}

export class MaildirSession implements MaildropSession {
  readonly user: string;
  readonly messages: readonly MaildropMessage[];
  readonly #dir: string;
  readonly #records: readonly UidRecord[];
  readonly #files: Map<string, MaildirFile>;
  readonly #lock: LockHandle;
  readonly #host: SessionHost;
  readonly #policy: ReadPolicy;
  readonly #recount = new Set<string>();
  #state: SessionState = 'open';
  #ending: Promise<void> | undefined;

  constructor(
    user: string,
    dir: string,
    records: readonly UidRecord[],
    files: ReadonlyMap<string, MaildirFile>,
    lock: LockHandle,
    host: SessionHost,
    policy: ReadPolicy = { syncReadMaxBytes: SMALL_MESSAGE },
  ) {
    this.user = user;
    this.#dir = dir;
    this.#records = records;
    this.#files = new Map(files);
    this.#lock = lock;
    this.#host = host;
    this.#policy = policy;
    this.messages = Object.freeze(records.map((r) => Object.freeze({ uid: r.uidl, size: r.crlfSize })));
  }

  /**
   * Streams message `index` (0-based) with CRLF line endings, not dot-stuffed, without buffering
   * it. A message another client removed meanwhile rejects with ERR_STORE_NO_SUCH_MESSAGE.
   */
  async read(index: number, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    this.#assertOpen();
    const record = this.#record(index);
    options.signal?.throwIfAborted();
    if (record.fileSize <= SMALL_MESSAGE) {
      // One chunk: a fraction of a file stream's cost for the typical small message.
      const stream = Readable.from([await this.#whole(record, index)], { objectMode: false });
      if (options.signal) addAbortSignal(options.signal, stream);
      return stream;
    }
    const handle = await this.#openChecked(record, index);
    const source = handle.createReadStream({ highWaterMark: SMALL_MESSAGE });
    const encoder = new CrlfEncoder(record.crlfSize);
    pipeline(source, encoder, () => {});
    if (options.signal) addAbortSignal(options.signal, encoder);
    return encoder;
  }

  /**
   * The whole message as one Buffer (CRLF, not stuffed) when its file is at most 64 KiB, else
   * undefined. Files up to `syncReadMaxBytes` are read with blocking calls: open, read and close
   * are three system calls of a few microseconds each on a cached file, where the promise API
   * makes each of them a round trip through libuv's thread pool, waking a pool thread and then
   * the event loop. That hand-off, not the disk, was most of a RETR's cost (see BENCHMARKS.md,
   * Server). Dovecot reads the same way, blocking, in its per-session process.
   */
  async readWhole(index: number): Promise<Buffer | undefined> {
    this.#assertOpen();
    const record = this.#record(index);
    return record.fileSize > SMALL_MESSAGE ? undefined : this.#whole(record, index);
  }

  async #whole(record: UidRecord, index: number): Promise<Buffer> {
    if (record.fileSize <= this.#policy.syncReadMaxBytes) {
      const known = this.#files.get(record.base);
      const wire = known === undefined ? undefined : this.#readSync(known.rel, record, index);
      if (wire !== undefined) return wire;
    }
    return this.#readSmall(await this.#openFile(record.base), record, index);
  }

  /** Opens the message file and checks it still has the size it was counted with. */
  async #openChecked(record: UidRecord, index: number): Promise<FileHandle> {
    const handle = await this.#openFile(record.base);
    let size: number;
    try {
      size = (await handle.stat()).size;
    } catch (error) {
      await handle.close();
      throw storeIoError('reading a message', error);
    }
    if (size !== record.fileSize) {
      await handle.close();
      throw this.#changed(record, index);
    }
    return handle;
  }

  /**
   * Blocking read of a small file: open, one read, close (no fstat: asking for one octet more
   * than the counted size shows a file that grew, a short read one that shrank). Undefined when
   * the file is gone from where it was listed (the async path then looks it up again).
   */
  #readSync(rel: string, record: UidRecord, index: number): Buffer | undefined {
    let fd: number;
    try {
      fd = openSync(join(this.#dir, rel), 'r');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw storeIoError('opening a message', error);
    }
    try {
      scratch ??= Buffer.allocUnsafe(SMALL_MESSAGE + 1);
      const want = record.fileSize + 1;
      let filled = 0;
      for (;;) {
        const n = readSync(fd, scratch, filled, want - filled, filled);
        filled += n;
        // A regular file's read comes back short only at its end; a short read that stops at
        // the counted size is that end, anything else is read on until the end or the limit.
        if (n === 0 || filled === want || filled === record.fileSize) break;
      }
      const wire =
        filled === record.fileSize ? crlfCopy(scratch.subarray(0, filled), record.crlfSize) : undefined;
      if (wire === undefined) throw this.#changed(record, index);
      return wire;
    } catch (error) {
      throw storeIoError('reading a message', error);
    } finally {
      closeSync(fd);
    }
  }

  #changed(record: UidRecord, index: number): StoreError {
    this.#recount.add(record.base);
    return new StoreError(
      'ERR_STORE_IO',
      `message ${index + 1} changed on disk since it was counted; it will be re-counted when the session ends`,
    );
  }

  /** Thread-pool read of a small file: open, read, close (the size check as in #readSync). */
  async #readSmall(handle: FileHandle, record: UidRecord, index: number): Promise<Buffer> {
    try {
      const raw = Buffer.allocUnsafe(record.fileSize + 1);
      let filled = 0;
      for (;;) {
        const { bytesRead } = await handle.read(raw, filled, raw.length - filled, filled);
        filled += bytesRead;
        if (bytesRead === 0 || filled === raw.length || filled === record.fileSize) break;
      }
      const wire = filled === record.fileSize ? toCrlf(raw.subarray(0, filled)) : undefined;
      if (wire === undefined || wire.length !== record.crlfSize) throw this.#changed(record, index);
      return wire;
    } catch (error) {
      throw storeIoError('reading a message', error);
    } finally {
      await handle.close();
    }
  }

  /**
   * The UPDATE state: removes the given 0-based messages (see maildir-commit.ts for the crash
   * semantics), then releases the lock. Releases the lock even when it fails.
   */
  async commit(deleted: readonly number[]): Promise<void> {
    this.#assertOpen();
    const bases = [...new Set(deleted.map((i) => this.#record(i).base))];
    this.#state = 'committing';
    this.#ending = (async () => {
      try {
        if (bases.length > 0) {
          await writeJournal(this.#dir, bases);
          await removeFiles(this.#dir, bases, this.#files);
        }
        if (bases.length > 0 || this.#recount.size > 0) {
          await this.#host.updateState(this.#dir, new Set(bases), this.#recount);
        }
        if (bases.length > 0) await clearJournal(this.#dir);
      } finally {
        await this.#end();
      }
    })();
    return this.#ending;
  }

  /** Ends the session without deleting anything. Safe to call more than once. */
  async release(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'committing';
      this.#ending = (async () => {
        try {
          if (this.#recount.size > 0) await this.#host.updateState(this.#dir, new Set(), this.#recount);
        } catch {
          // Re-counting is an optimisation; the next open tries again.
        } finally {
          await this.#end();
        }
      })();
    }
    await this.#ending?.catch(() => {});
  }

  async #end(): Promise<void> {
    this.#state = 'closed';
    this.#host.ended(this);
    await this.#lock.release();
  }

  #assertOpen(): void {
    if (this.#state !== 'open') {
      throw new StoreError('ERR_STORE_IO', 'the maildrop session has ended; open the maildrop again');
    }
  }

  #record(index: number): UidRecord {
    const record = Number.isInteger(index) ? this.#records[index] : undefined;
    if (!record) {
      throw new StoreError(
        'ERR_STORE_NO_SUCH_MESSAGE',
        `no message ${Number.isInteger(index) ? index + 1 : '?'} in this session`,
      );
    }
    return record;
  }

  async #openFile(base: string) {
    const known = this.#files.get(base);
    if (known) {
      try {
        return await open(join(this.#dir, known.rel), 'r');
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw storeIoError('opening a message', error);
      }
    }
    // Renamed by another client (new/ to cur/, flags changed) or removed: look once more.
    const moved = (await listMaildir(this.#dir)).get(base);
    if (moved) {
      try {
        const handle = await open(join(this.#dir, moved.rel), 'r');
        this.#files.set(base, moved);
        return handle;
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw storeIoError('opening a message', error);
      }
    }
    throw new StoreError(
      'ERR_STORE_NO_SUCH_MESSAGE',
      'the message was removed from the maildrop by another program during this session',
    );
  }
}
