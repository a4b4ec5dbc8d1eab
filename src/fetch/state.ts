/**
 * Durable UIDL state of one account: an append-only journal, one checksummed JSON record per
 * line, fsynced before any step that depends on it. This is what lets a run that was killed at
 * any byte resume without losing or repeating mail (docs/fetch.md, "Crash analysis").
 *
 * Records:
 * - `I` (intent): a message with this UIDL is about to become visible in the destination under
 *   `key` (a sink-specific locator). Written before the first visible byte.
 * - `D` (delivered): the message is fsynced in its final place; it counts as fetched. Carries the
 *   first-seen time (for `delete_after_days`), the size and the Message-ID.
 * - `X` (expunged): the server confirmed deletion at QUIT; the UIDL will never come back.
 * - `A` (abandoned): an intent that was checked and found not delivered (or whose delivery
 *   failed); the message will be fetched again.
 *
 * Line format: `<crc32 hex8> <json>\n`. A last line that is torn (no newline, bad checksum,
 * zero-filled tail after a power cut) is the only damage a crash can cause: it is cut off on
 * load. Damage anywhere else is reported as `ERR_FETCH_STATE`, never silently "repaired", because
 * guessing could repeat or lose mail.
 */

import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { FetchError } from '../errors.ts';
import { fsyncDir, writeFileAtomic } from '../internal/durable-fs.ts';

/** What is known about one delivered message. */
export interface DeliveredEntry {
  /** When popgate first delivered it (ms since epoch); `delete_after_days` counts from here. */
  readonly firstSeen: number;
  readonly size: number;
  readonly messageId?: string;
}

/** A delivery that was announced but not confirmed: checked against the destination on start. */
export interface PendingIntent {
  readonly uidl: string;
  readonly key: unknown;
}

type JournalRecord =
  | { t: 'I'; u: string; k: unknown }
  | { t: 'D'; u: string; f: number; s: number; m?: string }
  | { t: 'X'; u: string }
  | { t: 'A'; u: string };

const MAX_LINE = 64 * 1024;

function encode(record: JournalRecord): string {
  const json = JSON.stringify(record);
  const sum = crc32(json).toString(16).padStart(8, '0');
  return `${sum} ${json}\n`;
}

function decodeLine(line: string): JournalRecord | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined;
  try {
    const value = JSON.parse(json) as JournalRecord;
    if (typeof value !== 'object' || value === null || typeof value.u !== 'string') return undefined;
    if (value.t === 'D' && (typeof value.f !== 'number' || typeof value.s !== 'number')) return undefined;
    if (value.t !== 'I' && value.t !== 'D' && value.t !== 'X' && value.t !== 'A') return undefined;
    return value;
  } catch {
    return undefined;
  }
}

/**
 * The UIDL state of one account. Open it with {@link UidlState.open} while holding the account
 * lock; only one process may append at a time.
 */
/**
 * The records of a journal's text, and how many bytes of it are whole records (a torn last
 * record is left out). Pure: nothing is written.
 * @throws FetchError `ERR_FETCH_STATE` when a record before the last one is damaged.
 */
function parseJournal(text: string, path: string): { records: JournalRecord[]; good: number } {
  const records: JournalRecord[] = [];
  let good = 0;
  let offset = 0;
  let lineNo = 0;
  while (offset < text.length) {
    const nl = text.indexOf('\n', offset);
    lineNo++;
    const line = nl === -1 ? undefined : text.slice(offset, nl);
    const record =
      line === undefined || line.length > MAX_LINE
        ? undefined
        : decodeLine(Buffer.from(line, 'latin1').toString('utf8'));
    if (record === undefined) {
      // Only the tail may be torn: everything after this point must be incomplete bytes.
      const rest = nl === -1 ? '' : text.slice(nl + 1);
      if (rest.replace(/\0/g, '').length > 0) {
        throw new FetchError(
          'ERR_FETCH_STATE',
          `the fetch state ${path} is damaged at line ${lineNo}. popgate will not guess (that could repeat or lose mail): ` +
            'move the file aside to start over (already fetched messages left on the server would be fetched again), ' +
            'or restore it from a backup',
        );
      }
      break;
    }
    records.push(record);
    offset = nl + 1;
    good = offset;
  }
  return { records, good };
}

/**
 * Reads the journal at `path` the way {@link UidlState.open} would, without changing anything
 * (for `popgate doctor`): the number of whole records, whether a torn tail would be cut, or
 * `undefined` when there is no journal yet.
 * @throws FetchError `ERR_FETCH_STATE` when fetch would refuse the file.
 */
export async function checkJournal(
  path: string,
): Promise<{ records: number; tornTail: boolean } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FetchError(
      'ERR_FETCH_STATE',
      `cannot read the fetch state ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const { records, good } = parseJournal(text, path);
  return { records: records.length, tornTail: good < Buffer.byteLength(text, 'latin1') };
}

export class UidlState {
  readonly path: string;
  readonly #delivered = new Map<string, DeliveredEntry>();
  readonly #pending = new Map<string, unknown>();
  #handle: FileHandle | undefined;
  #poisoned: unknown;
  #records = 0;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Loads (creating if absent) the journal at `path`. A torn last record is cut off and the file
   * fsynced, so later appends never follow garbage.
   * @throws FetchError `ERR_FETCH_STATE` when a record before the last one is damaged.
   */
  static async open(path: string): Promise<UidlState> {
    const state = new UidlState(path);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(path, 'latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FetchError(
          'ERR_FETCH_STATE',
          `cannot read the fetch state ${path}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    }
    const { records, good } = parseJournal(text, path);
    for (const record of records) state.#apply(record);
    const handle = await open(path, 'a+', 0o600);
    try {
      if (good < Buffer.byteLength(text, 'latin1')) {
        await handle.truncate(good);
        await handle.sync();
      }
      if (text.length === 0) await fsyncDir(dirname(path));
    } catch (error) {
      await handle.close();
      throw error;
    }
    state.#handle = handle;
    return state;
  }

  #apply(record: JournalRecord): void {
    this.#records++;
    switch (record.t) {
      case 'I':
        this.#pending.set(record.u, record.k);
        break;
      case 'D': {
        this.#pending.delete(record.u);
        const entry: DeliveredEntry =
          record.m === undefined
            ? { firstSeen: record.f, size: record.s }
            : { firstSeen: record.f, size: record.s, messageId: record.m };
        this.#delivered.set(record.u, entry);
        break;
      }
      case 'X':
        this.#pending.delete(record.u);
        this.#delivered.delete(record.u);
        break;
      case 'A':
        this.#pending.delete(record.u);
        break;
    }
  }

  /** Whether the message with this UIDL counts as fetched. */
  has(uidl: string): boolean {
    return this.#delivered.has(uidl);
  }

  get(uidl: string): DeliveredEntry | undefined {
    return this.#delivered.get(uidl);
  }

  /** Number of delivered messages known. */
  get size(): number {
    return this.#delivered.size;
  }

  /** All delivered UIDLs with their entries. */
  entries(): IterableIterator<[string, DeliveredEntry]> {
    return this.#delivered.entries();
  }

  /** Intents with no matching `D`: a previous run stopped between announcing and confirming. */
  pendingIntents(): PendingIntent[] {
    return [...this.#pending].map(([uidl, key]) => ({ uidl, key }));
  }

  /** Durably announces deliveries that are about to become visible. */
  async recordIntents(intents: readonly PendingIntent[]): Promise<void> {
    await this.#append(intents.map((i) => ({ t: 'I', u: i.uidl, k: i.key })));
  }

  /** Durably marks messages as fetched. Only after this may they be deleted on the server. */
  async recordDelivered(entries: readonly (DeliveredEntry & { uidl: string })[]): Promise<void> {
    await this.#append(
      entries.map((e) =>
        e.messageId === undefined
          ? { t: 'D', u: e.uidl, f: e.firstSeen, s: e.size }
          : { t: 'D', u: e.uidl, f: e.firstSeen, s: e.size, m: e.messageId },
      ),
    );
  }

  /** Durably forgets intents that were found not delivered, or whose delivery failed. */
  async abandonIntents(uidls: readonly string[]): Promise<void> {
    await this.#append(uidls.map((u) => ({ t: 'A', u })));
  }

  /** Records that the server confirmed deletion (QUIT answered +OK). */
  async recordExpunged(uidls: readonly string[]): Promise<void> {
    await this.#append(uidls.map((u) => ({ t: 'X', u })));
  }

  /** Number of records in the journal (for compaction decisions). */
  get recordCount(): number {
    return this.#records;
  }

  /**
   * Rewrites the journal to only the live entries, atomically (write temp, fsync, rename,
   * fsync directory). Safe to kill at any point: either the old or the new file is in place.
   */
  async compact(): Promise<void> {
    const lines: string[] = [];
    for (const [u, k] of this.#pending) lines.push(encode({ t: 'I', u, k }));
    for (const [u, e] of this.#delivered) {
      lines.push(
        encode(
          e.messageId === undefined
            ? { t: 'D', u, f: e.firstSeen, s: e.size }
            : { t: 'D', u, f: e.firstSeen, s: e.size, m: e.messageId },
        ),
      );
    }
    await writeFileAtomic(this.path, lines.join(''), 0o600);
    await this.#handle?.close();
    this.#handle = await open(this.path, 'a+', 0o600);
    this.#records = lines.length;
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  async #append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.#poisoned !== undefined) {
      throw new FetchError(
        'ERR_FETCH_STATE',
        'the fetch state could not be written earlier in this run; run popgate fetch again',
        {
          cause: this.#poisoned,
        },
      );
    }
    const handle = this.#handle;
    if (handle === undefined) throw new FetchError('ERR_FETCH_STATE', 'the fetch state is closed');
    try {
      await handle.write(records.map(encode).join(''));
      await handle.datasync();
    } catch (error) {
      // A short write leaves a torn line: no later record may follow it in this process. The
      // next run cuts it off on load.
      this.#poisoned = error;
      const code = (error as NodeJS.ErrnoException).code;
      const hint =
        code === 'ENOSPC' || code === 'EDQUOT'
          ? 'the disk holding the state is full: free some space'
          : String(code);
      throw new FetchError(
        'ERR_FETCH_STATE',
        `cannot write the fetch state ${this.path} (${hint}); run popgate fetch again afterwards`,
        {
          cause: error,
        },
      );
    }
    for (const r of records) this.#apply(r);
  }
}
