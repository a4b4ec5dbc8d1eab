// The UPDATE state's deletions, crash safe (RFC 1939 section 6: deletions happen only in UPDATE).
//
//   1. write `popgate-commit` (the base names to delete) atomically: temp, fsync, rename, dir fsync
//   2. unlink each file (found again by base name if another client renamed it meanwhile)
//   3. fsync new/ and cur/
//   4. drop the records from popgate-uidlist (atomic replace)
//   5. remove `popgate-commit`, fsync the Maildir
//
// A crash before step 1 completes deletes nothing (as a dropped connection). A crash after it
// leaves the journal, and the next open of the maildrop (under the same lock) finishes steps 2-5
// before listing, so a message the client deleted never comes back and an undeleted one is never
// touched. Unlinking is idempotent, so replaying a journal twice is harmless.
//
// Step 1 is the commit point, also for failures without a crash: when it fails nothing is
// deleted (the journal is taken back if it reached the directory before the failure); when a
// later step fails the deletion stands, and the journal left behind makes the next open finish.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../errors.ts';
import { errnoOf, fsyncDir, storeIoError, writeFileAtomic } from './fs-util.ts';
import { readStateFile } from './maildir-file.ts';
import { listMaildir, type MaildirFile } from './maildir-scan.ts';

export const JOURNAL_FILE = 'popgate-commit';

function journalText(bases: readonly string[]): string {
  return `popgate-commit 1\n${bases.join('\n')}\n`;
}

/** Step 1: records the intent durably. */
export async function writeJournal(dir: string, bases: readonly string[]): Promise<void> {
  try {
    await writeFileAtomic(join(dir, JOURNAL_FILE), journalText(bases));
  } catch (error) {
    throw storeIoError('writing the deletion journal', error);
  }
}

/**
 * After `writeJournal` failed: makes sure no journal of this commit is left for the next open to
 * act on (the rename can succeed and the directory fsync after it fail). True when none is, so
 * the commit did not happen; false when the journal is there and cannot be removed, so the
 * deletion must go ahead.
 */
export async function retractJournal(dir: string, bases: readonly string[]): Promise<boolean> {
  const path = join(dir, JOURNAL_FILE);
  let text: string;
  try {
    text = await readStateFile(path, JOURNAL_FILE);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return true;
    // Not a regular file: the next open refuses to read it, so it deletes nothing.
    if (error instanceof StoreError && error.code === 'ERR_STORE_UNSAFE_FILE') return true;
    return false; // cannot tell: treat the journal as written
  }
  if (text !== journalText(bases)) return true; // not this commit's journal
  try {
    await unlink(path);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') return false;
  }
  await fsyncDir(dir).catch(() => {});
  return true;
}

/**
 * Steps 2-3: removes the files. `known` maps base names to where the session last saw them; a
 * file that moved (new/ to cur/, flags changed) is found again with one fresh listing.
 */
export async function removeFiles(
  dir: string,
  bases: readonly string[],
  known: ReadonlyMap<string, MaildirFile>,
): Promise<void> {
  let relisted: Map<string, MaildirFile> | undefined;
  for (const base of bases) {
    const first = known.get(base);
    if (first && (await unlinkIfPresent(join(dir, first.rel)))) continue;
    relisted ??= await listMaildir(dir);
    const moved = relisted.get(base);
    if (moved) await unlinkIfPresent(join(dir, moved.rel));
  }
  try {
    await fsyncDir(join(dir, 'new'));
    await fsyncDir(join(dir, 'cur'));
  } catch (error) {
    throw storeIoError('syncing the maildrop after deletions', error);
  }
}

async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw storeIoError('deleting a message', error);
  }
}

/** Step 5. */
export async function clearJournal(dir: string): Promise<void> {
  try {
    await unlink(join(dir, JOURNAL_FILE));
    await fsyncDir(dir);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw storeIoError('removing the deletion journal', error);
  }
}

/** At open: finishes a commit a crash interrupted. Returns how many base names it named. */
export async function replayJournal(dir: string): Promise<number> {
  let text: string;
  try {
    text = await readStateFile(join(dir, JOURNAL_FILE), JOURNAL_FILE);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return 0;
    throw storeIoError('reading the deletion journal', error);
  }
  const lines = text.split('\n').filter((l) => l !== '');
  // A journal is only ever renamed into place complete; anything else is not ours to act on.
  if (lines[0] !== 'popgate-commit 1') {
    throw storeIoError('reading the deletion journal', new Error('unknown journal header'));
  }
  const bases = lines.slice(1);
  await removeFiles(dir, bases, await listMaildir(dir));
  await clearJournal(dir);
  return bases.length;
}
