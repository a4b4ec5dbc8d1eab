/**
 * Maildir delivery (the qmail/Dovecot convention): write to `tmp/<unique>`, fsync the file,
 * announce, rename into `new/<unique>,S=<size>`, fsync `new/`. Names are unique per host, time,
 * process, sequence and randomness, so deliveries from other programs never collide. Files are
 * stored with LF line endings, as Dovecot, Postfix and procmail write them.
 */
import { close, closeSync, fsync, openSync, renameSync, writeSync } from 'node:fs';
import { access, mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FetchError, isPopgateError } from '../../errors.ts';
import { maildirHost, parseOwnName, uniqueName } from '../../internal/maildir-name.ts';
import { pidAlive } from '../../internal/pid.ts';
import { deliveryError, fsyncDir } from '../durable.ts';
import { LocalForm, toLocalForm } from './transform.ts';
import type { Intent, MessageInfo, PublishOutcome, RecoveryResult, Sink, Staged } from './types.ts';

interface MaildirStaged extends Staged {
  readonly tmpName: string;
  readonly finalName: string;
  readonly synced: Promise<unknown>;
}

interface MaildirKey {
  readonly tmp: string;
  readonly name: string;
}

/** Messages up to this size (from LIST) are converted in memory and written with one call. */
const BUFFERED_MAX = 1024 * 1024;
/** Files whose background fsync may run at once. */
const MAX_SYNCING = 128;

export interface MaildirSinkOptions {
  /** Keep CRLF line endings instead of converting to LF (default false). */
  readonly crlf?: boolean;
}

export class MaildirSink implements Sink {
  readonly kind = 'maildir' as const;
  readonly description: string;
  readonly dir: string;
  readonly #host = maildirHost();
  readonly #crlf: boolean;
  readonly #syncing = new Set<Promise<void>>();

  constructor(dir: string, options: MaildirSinkOptions = {}) {
    this.dir = dir;
    this.description = `Maildir ${dir}`;
    this.#crlf = options.crlf ?? false;
  }

  async open(): Promise<void> {
    try {
      for (const sub of ['tmp', 'new', 'cur'])
        await mkdir(join(this.dir, sub), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw deliveryError(error, `create the Maildir ${this.dir}`);
    }
    // Leftovers of popgate processes that died while staging (never another program's files).
    const host = this.#host;
    for (const name of await readdir(join(this.dir, 'tmp'))) {
      const own = parseOwnName(name);
      if (!own || own.host !== host) continue;
      const pid = own.pid;
      if (pid !== process.pid && !pidAlive(pid))
        await unlink(join(this.dir, 'tmp', name)).catch(() => undefined);
    }
  }

  async stage(message: Readable, info: MessageInfo): Promise<Staged> {
    // Bound the files whose fsync is still running (each holds a descriptor).
    while (this.#syncing.size >= MAX_SYNCING) await Promise.race(this.#syncing);
    const tmpName = uniqueName();
    const tmpPath = join(this.dir, 'tmp', tmpName);
    const small = info.size <= BUFFERED_MAX;
    let fd: number;
    let bytes: number;
    let messageId: string | undefined;
    try {
      if (small) {
        // Fast path: read the whole (small) message, convert it, and write it with one call on
        // this thread; only the fsync goes to the thread pool, in the background.
        const chunks: Buffer[] = [];
        for await (const chunk of message) chunks.push(chunk as Buffer);
        const local = toLocalForm(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), {
          lf: !this.#crlf,
        });
        fd = openSync(tmpPath, 'wx', 0o600);
        try {
          for (let off = 0; off < local.data.length; ) off += writeSync(fd, local.data, off);
        } catch (error) {
          closeSync(fd);
          throw error;
        }
        bytes = local.data.length;
        messageId = local.messageId;
      } else {
        const handle = await open(tmpPath, 'wx', 0o600);
        const form = new LocalForm({ lf: !this.#crlf });
        try {
          message.on('error', (error) => form.destroy(error));
          for await (const chunk of message.pipe(form)) await handle.write(chunk as Buffer);
        } catch (error) {
          await handle.close();
          throw error;
        }
        bytes = form.bytes;
        messageId = form.messageId;
        // The FileHandle owns fd: sync and close through it.
        const synced = handle.sync().finally(() => handle.close());
        return this.#track({ info, bytes, messageId, tmpName, finalName: `${tmpName},S=${bytes}`, synced });
      }
    } catch (error) {
      message.resume();
      await unlink(tmpPath).catch(() => undefined);
      // Errors of the message stream (connection dropped mid-RETR) keep their own type.
      if (isPopgateError(error)) throw error;
      throw deliveryError(error, `write ${tmpPath}`);
    }
    const synced = new Promise<void>((resolve, reject) => {
      fsync(fd, (syncError) => {
        close(fd, () => (syncError ? reject(syncError) : resolve()));
      });
    });
    return this.#track({ info, bytes, messageId, tmpName, finalName: `${tmpName},S=${bytes}`, synced });
  }

  #track(staged: MaildirStaged): MaildirStaged {
    const done = staged.synced.then(
      () => undefined,
      () => undefined,
    );
    this.#syncing.add(done);
    void done.then(() => this.#syncing.delete(done));
    return staged;
  }

  async publish(
    batch: readonly Staged[],
    announce: (intents: readonly Intent[]) => Promise<void>,
  ): Promise<PublishOutcome[]> {
    const items = batch as readonly MaildirStaged[];
    const syncs = await Promise.allSettled(items.map((s) => s.synced));
    const outcomes: PublishOutcome[] = syncs.map((r) =>
      r.status === 'fulfilled'
        ? { ok: true }
        : { ok: false, error: deliveryError(r.reason, 'fsync a message in tmp/') },
    );
    const ready = items.filter((_, i) => outcomes[i]?.ok);
    for (const [i, s] of items.entries()) {
      if (!outcomes[i]?.ok) await unlink(join(this.dir, 'tmp', s.tmpName)).catch(() => undefined);
    }
    if (ready.length === 0) return outcomes;
    await announce(
      ready.map((s) => ({
        uidl: s.info.uidl,
        key: { tmp: s.tmpName, name: s.finalName } satisfies MaildirKey,
      })),
    );
    // rename(2) of a small batch on this thread: metadata only, no waiting for the disk.
    const renames = ready.map((s): PromiseSettledResult<void> => {
      try {
        renameSync(join(this.dir, 'tmp', s.tmpName), join(this.dir, 'new', s.finalName));
        return { status: 'fulfilled', value: undefined };
      } catch (reason) {
        return { status: 'rejected', reason };
      }
    });
    try {
      await fsyncDir(join(this.dir, 'new'));
    } catch (error) {
      throw deliveryError(error, `fsync ${join(this.dir, 'new')}`);
    }
    let r = 0;
    for (const [i, outcome] of outcomes.entries()) {
      if (!outcome.ok) continue;
      const result = renames[r++];
      if (result?.status === 'rejected')
        outcomes[i] = { ok: false, error: deliveryError(result.reason, 'move a message into new/') };
    }
    return outcomes;
  }

  async discard(staged: Staged): Promise<void> {
    const s = staged as MaildirStaged;
    await s.synced.catch(() => undefined);
    await unlink(join(this.dir, 'tmp', s.tmpName)).catch(() => undefined);
  }

  async recover(key: unknown): Promise<RecoveryResult> {
    const k = key as Partial<MaildirKey> | null;
    if (
      typeof k?.name !== 'string' ||
      typeof k.tmp !== 'string' ||
      k.name.includes('/') ||
      k.tmp.includes('/')
    ) {
      throw new FetchError(
        'ERR_FETCH_STATE',
        'the fetch state holds a Maildir intent that is not valid; the state file is damaged',
      );
    }
    const { name, tmp } = k;
    const inNew = await access(join(this.dir, 'new', name)).then(
      () => true,
      () => false,
    );
    // A mail reader may already have moved it to cur/ and added flags (`name:2,S`).
    const found =
      inNew ||
      (await readdir(join(this.dir, 'cur')).then((names) =>
        names.some((n) => n === name || n.startsWith(`${name}:`)),
      ));
    await unlink(join(this.dir, 'tmp', tmp)).catch(() => undefined);
    return found ? 'delivered' : 'absent';
  }

  async close(): Promise<void> {}
}
