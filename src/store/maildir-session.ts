// One opened, locked Maildir maildrop (RFC 1939 TRANSACTION and UPDATE states).
import { closeSync, readSync, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, pipeline, Readable } from 'node:stream';
import { isPopgateError, StoreError } from '../errors.ts';
import type { LockHandle } from '../internal/lock-file.ts';
import type { Logger } from '../observability/logger.ts';
import { CrlfEncoder, crlfCopy, toCrlf } from './crlf.ts';
import { errnoOf, storeIoError } from './fs-util.ts';
import { clearJournal, removeFiles, retractJournal, writeJournal } from './maildir-commit.ts';
import {
  type FileIdentity,
  openMessageFile,
  openMessageFileSync,
  type UnsafeReason,
} from './maildir-file.ts';
import { listMaildir, type MaildirFile } from './maildir-scan.ts';
import type { CommitResult, MaildropMessage, MaildropSession } from './types.ts';
import type { UidRecord } from './uidlist.ts';

/** What the session needs from its store. */
export interface SessionHost {
  /** Drops deleted records from the UID state and re-counts records found wrong (state lock held). */
  updateState(dir: string, deleted: ReadonlySet<string>, recount: ReadonlySet<string>): Promise<void>;
  /** Called once when the session ends (commit or release). */
  ended(session: MaildirSession): void;
  /** The uid every message file must belong to (the Maildir's owner; see maildir-file.ts). */
  readonly owner: number | undefined;
  /** A message file found unsafe when read (a symlink, FIFO, foreign owner...): logged once. */
  skipped(rel: string, reason: UnsafeReason): void;
  /** For a commit whose bookkeeping was deferred, and a lock that could not be removed. */
  readonly logger: Logger;
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
  /** The inode each message file was first seen as (by the scan, else at its first read). */
  readonly #identity: Map<string, FileIdentity>;
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
    identities: ReadonlyMap<string, FileIdentity> = new Map(),
  ) {
    this.user = user;
    this.#dir = dir;
    this.#records = records;
    this.#files = new Map(files);
    this.#identity = new Map(identities);
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
   * undefined. Files up to `syncReadMaxBytes` are read with blocking calls: open, fstat, read
   * and close are four system calls of a few microseconds each on a cached file, where the
   * promise API makes each of them a round trip through libuv's thread pool, waking a pool
   * thread and then the event loop. That hand-off, not the disk, was most of a RETR's cost (see BENCHMARKS.md,
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
    return this.#readSmall((await this.#openFile(record, index)).handle, record, index);
  }

  /** Opens the message file and checks it still has the size it was counted with. */
  async #openChecked(record: UidRecord, index: number): Promise<FileHandle> {
    const { handle, stats } = await this.#openFile(record, index);
    if (stats.size !== record.fileSize) {
      await handle.close();
      throw this.#changed(record, index);
    }
    return handle;
  }

  /**
   * Blocking read of a small file: open (O_NOFOLLOW|O_NONBLOCK), fstat (a regular file of the
   * Maildir's owner, the inode it was seen as), one read, close (asking for one octet more than
   * the counted size shows a file that grew since, a short read one that shrank). Undefined when
   * the file is gone from where it was listed (the async path then looks it up again).
   */
  #readSync(rel: string, record: UidRecord, index: number): Buffer | undefined {
    let opened: ReturnType<typeof openMessageFileSync>;
    try {
      opened = openMessageFileSync(join(this.#dir, rel), this.#host.owner);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw storeIoError('opening a message', error);
    }
    if ('unsafe' in opened) throw this.#unsafe(rel, opened.unsafe, index);
    const fd = opened.file;
    try {
      this.#checkIdentity(record, opened.stats, index);
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

  /** Pins a message file to the inode first seen; a different one later is a changed file. */
  #checkIdentity(record: UidRecord, stats: Stats, index: number): void {
    const seen = this.#identity.get(record.base);
    if (seen === undefined) this.#identity.set(record.base, { dev: stats.dev, ino: stats.ino });
    else if (seen.dev !== stats.dev || seen.ino !== stats.ino) throw this.#changed(record, index);
  }

  #unsafe(rel: string, reason: UnsafeReason, index: number): StoreError {
    this.#host.skipped(rel, reason);
    return new StoreError(
      'ERR_STORE_UNSAFE_FILE',
      `message ${index + 1} is no longer a regular file of the maildrop's owner (${reason}); it is not served`,
    );
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
   * semantics), then releases the lock, also when it fails. Rejects only when nothing was
   * deleted (the journal, the commit point, was not written); a failure after the journal
   * resolves `deferred`: the deletion stands and the next open of the maildrop finishes it.
   */
  async commit(deleted: readonly number[]): Promise<CommitResult> {
    this.#assertOpen();
    const bases = [...new Set(deleted.map((i) => this.#record(i).base))];
    this.#state = 'committing';
    const result = this.#commit(bases);
    this.#ending = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  async #commit(bases: readonly string[]): Promise<CommitResult> {
    try {
      if (bases.length === 0) {
        await this.#recountQuietly();
        return { outcome: 'committed', deleted: 0 };
      }
      let failure: unknown;
      try {
        await writeJournal(this.#dir, bases);
      } catch (error) {
        if (await retractJournal(this.#dir, bases)) throw error; // not committed: nothing deleted
        failure = error; // a journal may be on disk and could not be taken back: go ahead
      }
      try {
        await removeFiles(this.#dir, bases, this.#files);
        await this.#host.updateState(this.#dir, new Set(bases), this.#recount);
        await clearJournal(this.#dir);
      } catch (error) {
        failure ??= error;
      }
      if (failure === undefined) return { outcome: 'committed', deleted: bases.length };
      const error = storeIoError('finishing the deletions', failure);
      this.#host.logger.warn(
        { user: this.user, messages: bases.length, code: error.code },
        'UPDATE committed; its bookkeeping failed and is finished at the next open of the maildrop',
      );
      return { outcome: 'deferred', deleted: bases.length, error };
    } finally {
      await this.#end();
    }
  }

  /** Re-counts files found changed; an optimisation, so a failure only waits for the next try. */
  async #recountQuietly(): Promise<void> {
    if (this.#recount.size === 0) return;
    try {
      await this.#host.updateState(this.#dir, new Set(), this.#recount);
    } catch {
      // The next read that finds the size wrong asks again.
    }
  }

  /** Ends the session without deleting anything. Safe to call more than once. */
  async release(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'committing';
      this.#ending = (async () => {
        try {
          await this.#recountQuietly();
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
    try {
      await this.#lock.release();
    } catch (error) {
      // The file stays, but its token is no longer held: the next open judges it stale.
      this.#host.logger.warn(
        { user: this.user, code: isPopgateError(error) ? error.code : errnoOf(error) },
        'could not remove the maildrop lock; the next open breaks it',
      );
    }
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

  /**
   * Opens a message file where the session last saw it, else where one fresh listing finds it
   * (renamed by another client: new/ to cur/, flags changed). A file there that is not a regular
   * file of the Maildir's owner, or not the inode first seen, is refused, never read.
   */
  async #openFile(record: UidRecord, index: number): Promise<{ handle: FileHandle; stats: Stats }> {
    const known = this.#files.get(record.base);
    if (known) {
      const opened = await this.#tryOpen(known.rel, record, index);
      if (opened) return opened;
    }
    const moved = (await listMaildir(this.#dir)).get(record.base);
    if (moved) {
      const opened = await this.#tryOpen(moved.rel, record, index);
      if (opened) {
        this.#files.set(record.base, moved);
        return opened;
      }
    }
    throw new StoreError(
      'ERR_STORE_NO_SUCH_MESSAGE',
      'the message was removed from the maildrop by another program during this session',
    );
  }

  /** Undefined when nothing is at `rel` (any more). */
  async #tryOpen(
    rel: string,
    record: UidRecord,
    index: number,
  ): Promise<{ handle: FileHandle; stats: Stats } | undefined> {
    let opened: Awaited<ReturnType<typeof openMessageFile>>;
    try {
      opened = await openMessageFile(join(this.#dir, rel), this.#host.owner);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw storeIoError('opening a message', error);
    }
    if ('unsafe' in opened) throw this.#unsafe(rel, opened.unsafe, index);
    try {
      this.#checkIdentity(record, opened.stats, index);
    } catch (error) {
      await opened.file.close();
      throw error;
    }
    return { handle: opened.file, stats: opened.stats };
  }
}
