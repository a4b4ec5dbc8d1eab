// The embedded default maildrop store: one Maildir per user at `<root>/<user>/`.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ConfigError, isPopgateError, StoreError } from '../errors.ts';
import { type LockOptions, tryLock, withLock } from '../internal/lock-file.ts';
import { OptionsChecker } from '../internal/options.ts';
import { type Logger, silentLogger } from '../observability/logger.ts';
import { isSupportedUidlFormat } from './dovecot-uidlist.ts';
import { errnoOf, storeIoError } from './fs-util.ts';
import { replayJournal } from './maildir-commit.ts';
import { deliverToMaildir } from './maildir-deliver.ts';
import type { UnsafeReason } from './maildir-file.ts';
import {
  countSizes,
  listMaildir,
  type MaildirGuard,
  type ReconcileOptions,
  reconcile,
  recordDelivery,
} from './maildir-scan.ts';
import { MaildirSession } from './maildir-session.ts';
import type { MaildropSession, MaildropStore } from './types.ts';
import { loadUidState, saveUidState, UIDLIST_FILE } from './uidlist.ts';
import { normalizeUser } from './user.ts';

/** The session lock file in each Maildir: held while a POP3 session has the maildrop open. */
export const SESSION_LOCK_FILE = 'popgate.lock';
/** The short lock around reading and replacing popgate-uidlist. */
export const STATE_LOCK_FILE = 'popgate-uidlist.lock';

export interface MaildirStoreOptions {
  /** Create `<root>/<user>/{tmp,new,cur}` on first open or delivery (default true). */
  readonly create?: boolean;
  /** Serve Dovecot's UIDLs for files its dovecot-uidlist numbers (default true). */
  readonly dovecotUidlist?: boolean;
  /** Dovecot's `pop3_uidl_format` (default `%08Xu%08Xv`); `%u`, `%v`, `%f` are supported. */
  readonly dovecotUidlFormat?: string;
  /** Largest message `deliver` accepts, in octets on disk (default 100 MiB). */
  readonly maxMessageSize?: number;
  /** How long a delivery or an open waits for the short state lock (default 10 s). */
  readonly stateLockTimeoutMs?: number;
  /** A lock written by another host (shared storage) counts as stale after this (default 1 day). */
  readonly foreignLockStaleMs?: number;
  /**
   * Message files up to this many octets are read with blocking system calls on the event loop
   * instead of through libuv's thread pool (default 65536, the most that applies; 0 turns it
   * off). Reading a small cached file that way costs microseconds where the thread-pool hand-off
   * costs far more. Turn it off when the Maildirs live on storage where one read can take
   * milliseconds (a network file system, a cold spinning disk): a blocked loop delays every
   * session of the process.
   */
  readonly syncReadMaxBytes?: number;
  readonly logger?: Logger;
}

interface Resolved {
  readonly create: boolean;
  readonly reconcile: ReconcileOptions;
  readonly maxMessageSize: number;
  readonly stateLockTimeoutMs: number;
  readonly lock: LockOptions;
  readonly syncReadMaxBytes: number;
  readonly logger: Logger;
}

const KNOWN_OPTIONS = new Set([
  'create',
  'dovecotUidlist',
  'dovecotUidlFormat',
  'maxMessageSize',
  'stateLockTimeoutMs',
  'foreignLockStaleMs',
  'syncReadMaxBytes',
  'logger',
]);

const check = new OptionsChecker({
  invalid: (key, what) => `${key} ${what}`,
  unknown: (key, hint) => `unknown Maildir store option "${key}"${hint}`,
});

function resolveOptions(options: MaildirStoreOptions): Resolved {
  check.knownKeys(options, KNOWN_OPTIONS);
  const format = options.dovecotUidlFormat ?? '%08Xu%08Xv';
  if (!isSupportedUidlFormat(format)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'dovecotUidlFormat supports only %u, %v and %f (with 0N and X modifiers)',
      {
        key: 'dovecotUidlFormat',
      },
    );
  }
  const positive = (key: keyof MaildirStoreOptions, value: number | undefined, fallback: number) =>
    check.integer(value, key, { min: 1, what: 'must be a positive integer' }, fallback);
  const logger = options.logger ?? silentLogger;
  const syncReadMaxBytes = check.integer(
    options.syncReadMaxBytes,
    'syncReadMaxBytes',
    { min: 0, what: 'must be a non-negative integer' },
    64 * 1024,
  );
  return Object.freeze({
    create: options.create ?? true,
    reconcile: Object.freeze({ dovecotUidlist: options.dovecotUidlist ?? true, dovecotUidlFormat: format }),
    maxMessageSize: positive('maxMessageSize', options.maxMessageSize, 100 * 1024 * 1024),
    stateLockTimeoutMs: positive('stateLockTimeoutMs', options.stateLockTimeoutMs, 10_000),
    lock: Object.freeze({
      foreignStaleMs: positive('foreignLockStaleMs', options.foreignLockStaleMs, 86_400_000),
      onStaleBroken: (info: { path: string; owner: string }) =>
        logger.warn({ lock: info.path, owner: info.owner }, 'broke a stale maildrop lock'),
    }),
    syncReadMaxBytes,
    logger,
  });
}

/**
 * Maildir maildrops, compatible with Postfix, procmail and Dovecot deliveries.
 *
 * @example
 * ```ts
 * const store = new MaildirStore('/var/mail/popgate');
 * const session = await store.open('alice@example.org'); // ERR_STORE_LOCKED if in use
 * for (const [i, m] of session.messages.entries()) console.log(i + 1, m.uid, m.size);
 * await session.commit([0]); // UPDATE: delete message 1, then unlock
 * ```
 * See docs/store.md for the layout, the UIDL rules and the crash semantics.
 */
/** Skipped Maildir entries already logged (one line per entry, not one per login). */
const MAX_REPORTED = 10_000;

export class MaildirStore implements MaildropStore {
  readonly root: string;
  readonly #options: Resolved;
  readonly #sessions = new Set<MaildirSession>();
  readonly #reported = new Set<string>();
  #closed = false;

  constructor(root: string, options: MaildirStoreOptions = {}) {
    if (typeof root !== 'string' || root === '')
      throw new ConfigError('ERR_CONFIG_INVALID', 'the Maildir store needs a root directory', {
        key: 'store',
      });
    this.root = root;
    this.#options = resolveOptions(options);
  }

  /** The Maildir of a user (validated and normalised, see src/store/user.ts). */
  maildirOf(user: string): string {
    return join(this.root, normalizeUser(user));
  }

  /** Opens and locks the user's maildrop (RFC 1939 section 4: exclusive access). */
  async open(user: string, options: { signal?: AbortSignal } = {}): Promise<MaildropSession> {
    this.#assertOpen();
    const name = normalizeUser(user);
    const dir = join(this.root, name);
    options.signal?.throwIfAborted();
    await this.#ensureMaildir(dir);
    let lock: Awaited<ReturnType<typeof tryLock>>;
    try {
      lock = await tryLock(join(dir, SESSION_LOCK_FILE), this.#options.lock);
    } catch (error) {
      throw storeIoError('locking the maildrop', error);
    }
    if (!lock)
      throw new StoreError('ERR_STORE_LOCKED', 'the maildrop is in use by another session; try again later');
    try {
      options.signal?.throwIfAborted();
      const owner = await this.#ownerOf(dir);
      const guard = this.#guard(name, owner.uid);
      const replayed = await replayJournal(dir);
      if (replayed > 0)
        this.#options.logger.warn(
          { user: name, messages: replayed },
          'finished deletions an interrupted session committed',
        );
      const { records, files, identities } = await this.#underStateLock(dir, () =>
        reconcile(dir, this.#options.reconcile, guard),
      );
      const session: MaildirSession = new MaildirSession(
        name,
        dir,
        records,
        files,
        lock,
        {
          updateState: (d, deleted, recount) =>
            this.#underStateLock(d, () => this.#updateState(d, deleted, recount, owner.uid)),
          ended: (s) => this.#sessions.delete(s),
          owner: owner.uid,
          skipped: (rel, reason) => guard.skipped?.(rel, reason),
          logger: this.#options.logger,
        },
        { syncReadMaxBytes: this.#options.syncReadMaxBytes },
        identities,
      );
      this.#sessions.add(session);
      return session;
    } catch (error) {
      await lock.release();
      if (isPopgateError(error, 'ERR_STORE_UNSAFE_FILE'))
        this.#options.logger.warn({ user: name, code: error.code }, error.message);
      throw error;
    }
  }

  /** Delivers one message durably (see maildir-deliver.ts) and returns its UIDL. */
  async deliver(user: string, message: Readable | Uint8Array): Promise<string> {
    this.#assertOpen();
    const name = normalizeUser(user);
    const dir = join(this.root, name);
    await this.#ensureMaildir(dir);
    const owner = await this.#ownerOf(dir);
    // Only files of the Maildir's owner are served (maildir-file.ts): root hands the new file to
    // the owner, as an MDA that delivers as the recipient would; anyone else must be the owner.
    const euid = process.geteuid?.();
    const chownTo = euid === 0 && owner.uid !== 0 ? owner : undefined;
    if (euid !== undefined && euid !== 0 && euid !== owner.uid) {
      throw new StoreError(
        'ERR_STORE_UNSAFE_FILE',
        `this Maildir belongs to uid ${owner.uid}, and only its owner's files are served; deliver as that user (or as root)`,
      );
    }
    return deliverToMaildir(dir, message, {
      maxMessageSize: this.#options.maxMessageSize,
      ...(chownTo ? { owner: chownTo } : {}),
      record: (record) =>
        this.#underStateLock(dir, () =>
          recordDelivery(dir, record, this.#options.reconcile, this.#guard(name, owner.uid)),
        ),
    });
  }

  /** Ends every open session without deleting anything and refuses further use. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions].map((s) => s.release()));
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_IO', 'the maildrop store is closed');
  }

  /** The Maildir directory's owner: the only uid whose message files it serves. */
  async #ownerOf(dir: string): Promise<{ uid: number; gid: number }> {
    try {
      const info = await stat(dir);
      return { uid: info.uid, gid: info.gid };
    } catch (error) {
      throw storeIoError('reading the maildrop owner', error);
    }
  }

  #guard(user: string, owner: number): MaildirGuard {
    return { owner, skipped: (rel, reason) => this.#reportSkipped(user, rel, reason) };
  }

  /** One warning per skipped entry (its name and why, never its content), not one per login. */
  #reportSkipped(user: string, rel: string, reason: UnsafeReason): void {
    const key = `${user}\0${rel}\0${reason}`;
    if (this.#reported.has(key)) return;
    if (this.#reported.size >= MAX_REPORTED) this.#reported.clear();
    this.#reported.add(key);
    this.#options.logger.warn(
      { user, file: rel, reason, code: 'ERR_STORE_UNSAFE_FILE' },
      "not serving a Maildir entry that is not a regular file of the maildrop's owner",
    );
  }

  async #ensureMaildir(dir: string): Promise<void> {
    try {
      if (this.#options.create) {
        await mkdir(this.root, { recursive: false }).catch((error) => {
          if (errnoOf(error) !== 'EEXIST') throw error;
        });
        for (const sub of ['tmp', 'new', 'cur'])
          await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
        return;
      }
      const info = await stat(join(dir, 'new'));
      if (!info.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOENT' });
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') {
        throw new StoreError(
          'ERR_STORE_NOT_FOUND',
          'no maildrop exists for this user (or the store root is missing)',
          { cause: error },
        );
      }
      throw storeIoError('preparing the maildrop', error);
    }
  }

  async #underStateLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    let result: { value: T } | undefined;
    try {
      result = await withLock(join(dir, STATE_LOCK_FILE), fn, {
        ...this.#options.lock,
        timeoutMs: this.#options.stateLockTimeoutMs,
      });
    } catch (error) {
      throw storeIoError('updating the maildrop state', error);
    }
    if (!result) throw new StoreError('ERR_STORE_LOCKED', 'the maildrop state is busy; try again later');
    return result.value;
  }

  async #updateState(
    dir: string,
    deleted: ReadonlySet<string>,
    recount: ReadonlySet<string>,
    owner: number,
  ): Promise<void> {
    const path = join(dir, UIDLIST_FILE);
    const state = await loadUidState(path);
    if (!state) return;
    state.records = state.records.filter((r) => !deleted.has(r.base));
    const files = recount.size > 0 ? await listMaildir(dir) : undefined;
    for (const record of state.records) {
      if (!recount.has(record.base)) continue;
      const found = files?.get(record.base);
      if (!found) continue;
      const counted = await countSizes(join(dir, found.rel), owner).catch(() => undefined);
      if (counted && !('unsafe' in counted))
        Object.assign(record, { fileSize: counted.fileSize, crlfSize: counted.crlfSize });
    }
    await saveUidState(path, state);
  }
}
