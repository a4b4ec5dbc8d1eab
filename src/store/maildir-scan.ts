// Listing a Maildir and reconciling it with the UID state. Runs with the state lock held.
import type { Dirent } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { countBareLf } from './crlf.ts';
import { DOVECOT_UIDLIST_FILE, type DovecotUidlist, loadDovecotUidlist } from './dovecot-uidlist.ts';
import { errnoOf, storeIoError, writeFileAtomic } from './fs-util.ts';
import {
  type FileIdentity,
  messageFileProblem,
  openMessageFile,
  readStateFile,
  typeProblem,
  type UnsafeReason,
} from './maildir-file.ts';
import { baseName, compareDelivery, isIgnoredName, sizeFields } from './maildir-names.ts';
import {
  allocateUidl,
  loadUidState,
  saveUidState,
  UIDLIST_FILE,
  type UidRecord,
  type UidState,
} from './uidlist.ts';

/** A message file as found on disk. */
export interface MaildirFile {
  readonly base: string;
  /** Path relative to the Maildir: `new/<name>` or `cur/<name>`. */
  readonly rel: string;
}

/** Whose message files a Maildir serves, and where the entries it does not serve are reported. */
export interface MaildirGuard {
  /** The uid every message file must belong to (the Maildir directory's owner); undefined: any. */
  readonly owner: number | undefined;
  /** Called for each entry of new/ or cur/ that is not served, with why (for a log line). */
  readonly skipped?: ((rel: string, reason: UnsafeReason) => void) | undefined;
}

/**
 * Lists new/ then cur/ (tmp/ holds deliveries in progress and is ignored). Reading new/ first
 * means a file another client moves from new/ to cur/ meanwhile is still seen at least once. A
 * rename inside cur/ while it is being read (Dovecot or an MUA setting flags: `X:2,` becomes
 * `X:2,S`) can hide the file from that readdir altogether, so a pass counts only when neither
 * directory changed while it ran (their mtime and ctime, in nanoseconds); otherwise it is read
 * again. Only regular files are listed: a symbolic link, FIFO, socket, device or directory is
 * skipped and reported to `skipped` (docs/security.md, "Maildir files").
 */
export async function listMaildir(
  dir: string,
  skipped?: MaildirGuard['skipped'],
): Promise<Map<string, MaildirFile>> {
  let previous: ListingPass | undefined;
  for (let attempt = 0; attempt < MAX_LISTING_PASSES; attempt++) {
    const before = await directoryStamps(dir);
    const pass = await listOnce(dir);
    const after = await directoryStamps(dir);
    if (before === after) return report(pass, skipped);
    previous =
      previous === undefined
        ? pass
        : { files: new Map([...previous.files, ...pass.files]), skipped: pass.skipped };
  }
  // Still changing after every pass: the union of what the passes saw (a file that moved is
  // found again by its base name when it is opened).
  return report(previous!, skipped);
}

/** Passes over a Maildir that keeps changing before the union of what was seen is used. */
const MAX_LISTING_PASSES = 5;

interface ListingPass {
  readonly files: Map<string, MaildirFile>;
  readonly skipped: readonly [string, UnsafeReason][];
}

function report(pass: ListingPass, skipped: MaildirGuard['skipped']): Map<string, MaildirFile> {
  for (const [rel, reason] of pass.skipped) skipped?.(rel, reason);
  return pass.files;
}

/** When new/ or cur/ last changed, as one comparable string ('' for a missing directory). */
async function directoryStamps(dir: string): Promise<string> {
  const stamps: string[] = [];
  for (const sub of ['new', 'cur'] as const) {
    try {
      const info = await stat(join(dir, sub), { bigint: true });
      stamps.push(`${info.mtimeNs}/${info.ctimeNs}`);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw storeIoError(`listing ${sub}/`, error);
      stamps.push('');
    }
  }
  return stamps.join(' ');
}

async function listOnce(dir: string): Promise<ListingPass> {
  const files = new Map<string, MaildirFile>();
  const skipped: [string, UnsafeReason][] = [];
  for (const sub of ['new', 'cur'] as const) {
    let entries: Dirent[];
    try {
      entries = await readdir(join(dir, sub), { withFileTypes: true });
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') continue;
      throw storeIoError(`listing ${sub}/`, error);
    }
    for (const entry of entries) {
      if (isIgnoredName(entry.name)) continue;
      const problem = typeProblem(entry);
      if (problem) {
        skipped.push([`${sub}/${entry.name}`, problem]);
        continue;
      }
      files.set(baseName(entry.name), { base: baseName(entry.name), rel: `${sub}/${entry.name}` });
    }
  }
  return { files, skipped };
}

/** A message file's sizes, counted by reading it once, and the inode that was read. */
export interface CountedFile {
  readonly fileSize: number;
  readonly crlfSize: number;
  readonly identity: FileIdentity;
}

/**
 * Reads a message file once (never following a symlink, never waiting on a FIFO, only a regular
 * file owned by `owner`) and returns its size on disk and its size with CRLF line endings, or
 * why it is not a message file.
 */
export async function countSizes(
  path: string,
  owner: number | undefined,
): Promise<CountedFile | { unsafe: UnsafeReason }> {
  const opened = await openMessageFile(path, owner);
  if ('unsafe' in opened) return opened;
  const handle = opened.file;
  try {
    const buffer = Buffer.allocUnsafe(256 * 1024);
    let fileSize = 0;
    let bare = 0;
    let prev = -1;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      bare += countBareLf(chunk, prev);
      prev = chunk[bytesRead - 1] ?? prev;
      fileSize += bytesRead;
    }
    const { dev, ino } = opened.stats;
    return { fileSize, crlfSize: fileSize + bare, identity: { dev, ino } };
  } finally {
    await handle.close();
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ReconcileOptions {
  /** Read dovecot-uidlist for files popgate has not numbered yet (default true). */
  readonly dovecotUidlist: boolean;
  readonly dovecotUidlFormat: string;
}

export interface Reconciled {
  /** Records of the files present, in message order. */
  readonly records: UidRecord[];
  /** Where each record's file is, by base name. */
  readonly files: ReadonlyMap<string, MaildirFile>;
  /** The inode each file numbered by this reconcile was seen as, by base name. */
  readonly identities: ReadonlyMap<string, FileIdentity>;
}

/** Remembers the last UIDVALIDITY issued, so a lost popgate-uidlist never brings one back. */
export const UIDVALIDITY_FILE = 'popgate-uidvalidity';

async function freshState(dir: string, dovecot: DovecotUidlist | undefined): Promise<UidState> {
  let last = 0;
  try {
    last = Number.parseInt(await readStateFile(join(dir, UIDVALIDITY_FILE), UIDVALIDITY_FILE), 10) || 0;
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw storeIoError('reading popgate-uidvalidity', error);
  }
  let uidValidity = Math.max(1, Math.floor(Date.now() / 1000), last + 1);
  // Never share Dovecot's UIDVALIDITY: our native UIDLs then cannot equal any UIDL it served.
  if (dovecot && uidValidity === dovecot.uidValidity) uidValidity += 1;
  try {
    await writeFileAtomic(join(dir, UIDVALIDITY_FILE), `${uidValidity}\n`);
  } catch (error) {
    throw storeIoError('writing popgate-uidvalidity', error);
  }
  return { uidValidity, nextUid: Math.max(1, dovecot?.nextUid ?? 1), records: [] };
}

/**
 * Brings the UID state in line with the files on disk: drops records of files that are gone,
 * numbers new files (Dovecot's UIDL when dovecot-uidlist knows the file, else a fresh native
 * one), counts sizes once, and saves the state when anything changed. A new file that is not a
 * regular file owned by `guard.owner` is not numbered (and reported). Caller holds the state lock.
 */
export async function reconcile(
  dir: string,
  options: ReconcileOptions,
  guard: MaildirGuard,
): Promise<Reconciled> {
  const files = await listMaildir(dir, guard.skipped);
  const identities = new Map<string, FileIdentity>();
  const statePath = join(dir, UIDLIST_FILE);
  const loaded = await loadUidState(statePath);
  let dovecot: DovecotUidlist | undefined;
  const loadDovecot = async () => {
    if (options.dovecotUidlist)
      dovecot ??= await loadDovecotUidlist(join(dir, DOVECOT_UIDLIST_FILE), options.dovecotUidlFormat);
    return dovecot;
  };
  const state = loaded ?? (await freshState(dir, await loadDovecot()));
  let changed = loaded === undefined;
  const kept = state.records.filter((r) => files.has(r.base));
  if (kept.length !== state.records.length) changed = true;
  const known = new Set(kept.map((r) => r.base));
  const fresh = [...files.values()].filter((f) => !known.has(f.base));
  const added: UidRecord[] = [];
  if (fresh.length > 0) {
    const dove = await loadDovecot();
    const found = await mapLimit(fresh, 16, async (file) => {
      try {
        // lstat: an entry swapped for a symlink since the listing is seen as one, not followed.
        const info = await lstat(join(dir, file.rel));
        const problem = messageFileProblem(info, guard.owner);
        if (problem) {
          guard.skipped?.(file.rel, problem);
          files.delete(file.base);
          return undefined;
        }
        identities.set(file.base, { dev: info.dev, ino: info.ino });
        return { file, mtimeMs: info.mtimeMs, size: info.size, dove: dove?.records.get(file.base) };
      } catch (error) {
        if (errnoOf(error) === 'ENOENT') return undefined; // removed meanwhile by another client
        throw storeIoError('reading a message file', error);
      }
    });
    const present = found.filter((f) => f !== undefined);
    const byDovecot = present.filter((f) => f.dove).sort((a, b) => a.dove!.uid - b.dove!.uid);
    const others = present
      .filter((f) => !f.dove)
      .sort((a, b) =>
        compareDelivery({ base: a.file.base, mtimeMs: a.mtimeMs }, { base: b.file.base, mtimeMs: b.mtimeMs }),
      );
    const ordered = [...byDovecot, ...others];
    const sizes = await mapLimit(ordered, 8, async (f) => {
      const named = sizeFields(f.file.base);
      const trusted = named.fileSize === undefined || named.fileSize === f.size;
      const crlf = f.dove?.crlfSize ?? (trusted ? named.crlfSize : undefined);
      if (crlf !== undefined) return { fileSize: f.size, crlfSize: crlf };
      try {
        const counted = await countSizes(join(dir, f.file.rel), guard.owner);
        if ('unsafe' in counted) {
          guard.skipped?.(f.file.rel, counted.unsafe);
          files.delete(f.file.base);
          identities.delete(f.file.base);
          return undefined;
        }
        const seen = identities.get(f.file.base);
        if (seen && (seen.dev !== counted.identity.dev || seen.ino !== counted.identity.ino)) {
          // Replaced between the lstat and the read: number it at the next open, when it holds still.
          files.delete(f.file.base);
          identities.delete(f.file.base);
          return undefined;
        }
        return counted;
      } catch (error) {
        if (errnoOf(error) === 'ENOENT') return undefined;
        throw storeIoError('reading a message file', error);
      }
    });
    const used = new Set(kept.map((r) => r.uidl));
    ordered.forEach((f, i) => {
      const size = sizes[i];
      if (!size) return;
      const uidl = f.dove && !used.has(f.dove.uidl) ? f.dove.uidl : allocateUidl(state, used);
      used.add(uidl);
      added.push({ uidl, fileSize: size.fileSize, crlfSize: size.crlfSize, base: f.file.base });
    });
    changed = true;
  }
  state.records = [...kept, ...added];
  if (changed) await saveUidState(statePath, state);
  return { records: state.records, files, identities };
}

/** Adds one delivered file to the state (or finds it numbered already); returns its UIDL. */
export async function recordDelivery(
  dir: string,
  record: Omit<UidRecord, 'uidl'>,
  options: ReconcileOptions,
  guard: MaildirGuard,
): Promise<string> {
  const statePath = join(dir, UIDLIST_FILE);
  const loaded = await loadUidState(statePath);
  if (loaded === undefined) {
    // First message of this maildrop (or state lost): a full reconcile numbers everything.
    const { records } = await reconcile(dir, options, guard);
    const found = records.find((r) => r.base === record.base);
    if (found) return found.uidl;
    throw storeIoError('numbering the delivered message', new Error('file vanished after delivery'));
  }
  const existing = loaded.records.find((r) => r.base === record.base);
  if (existing) return existing.uidl;
  const uidl = allocateUidl(loaded, new Set(loaded.records.map((r) => r.uidl)));
  loaded.records.push({ ...record, uidl });
  await saveUidState(statePath, loaded);
  return uidl;
}
