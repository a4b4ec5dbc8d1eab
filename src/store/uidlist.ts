// popgate-uidlist: the UID state kept in each Maildir's root, beside Dovecot's dovecot-uidlist.
//
//   popgate-uidlist 1 V<uidvalidity> N<next uid>
//   <uidl> <file size> <crlf size> <base name>
//
// One line per message, in message order (the order UIDs were assigned). The UIDL is what POP3
// serves; the sizes are counted once and cached. `N` only grows: a native UIDL is
// `%08x(uid)%08x(uidvalidity)` with a fresh uid, so a UIDL is never reused, even after its
// message is deleted. The base name is last so it may contain spaces.
import { StoreError } from '../errors.ts';
import { errnoOf, storeIoError, writeFileAtomic } from './fs-util.ts';
import { readStateFile } from './maildir-file.ts';

export const UIDLIST_FILE = 'popgate-uidlist';

export interface UidRecord {
  readonly uidl: string;
  /** Octets on disk. */
  fileSize: number;
  /** Octets served, with CRLF line endings. */
  crlfSize: number;
  readonly base: string;
}

export interface UidState {
  uidValidity: number;
  nextUid: number;
  records: UidRecord[];
}

const UIDL_RE = /^[\x21-\x7e]{1,70}$/;

/** True when `uidl` is a valid POP3 unique-id (RFC 1939 section 7: 1-70 octets 0x21-0x7E). */
export function isValidUidl(uidl: string): boolean {
  return UIDL_RE.test(uidl);
}

/** Formats a native UIDL the way Dovecot's default `%08Xu%08Xv` prints it (lower-case hex). */
export function formatUidl(uid: number, uidValidity: number): string {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  return hex(uid) + hex(uidValidity);
}

function corrupt(path: string, line: number, why: string): StoreError {
  return new StoreError(
    'ERR_STORE_CORRUPT',
    `${path} line ${line}: ${why}; repair or move the file aside (moving it aside changes every UIDL)`,
  );
}

/** Parses popgate-uidlist text; throws StoreError ERR_STORE_CORRUPT naming the bad line. */
export function parseUidState(text: string, path = UIDLIST_FILE): UidState {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = /^popgate-uidlist 1 V(\d{1,10}) N(\d{1,10})$/.exec(lines[0] ?? '');
  if (!header) throw corrupt(path, 1, 'unknown header');
  const state: UidState = { uidValidity: Number(header[1]), nextUid: Number(header[2]), records: [] };
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const match = /^(\S+) (\d{1,15}) (\d{1,15}) (.+)$/.exec(lines[i] ?? '');
    if (!match || !isValidUidl(match[1]!)) throw corrupt(path, i + 1, 'malformed record');
    const record: UidRecord = {
      uidl: match[1]!,
      fileSize: Number(match[2]),
      crlfSize: Number(match[3]),
      base: match[4]!,
    };
    if (seen.has(record.uidl) || seen.has(`\0${record.base}`)) throw corrupt(path, i + 1, 'duplicate record');
    seen.add(record.uidl);
    seen.add(`\0${record.base}`);
    state.records.push(record);
  }
  return state;
}

export function serializeUidState(state: UidState): string {
  const lines = [`popgate-uidlist 1 V${state.uidValidity} N${state.nextUid}`];
  for (const r of state.records) lines.push(`${r.uidl} ${r.fileSize} ${r.crlfSize} ${r.base}`);
  return `${lines.join('\n')}\n`;
}

/** Reads the state file; undefined when it does not exist yet. */
export async function loadUidState(path: string): Promise<UidState | undefined> {
  let text: string;
  try {
    text = await readStateFile(path, UIDLIST_FILE);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw storeIoError('reading the UID state', error);
  }
  return parseUidState(text, path);
}

export async function saveUidState(path: string, state: UidState): Promise<void> {
  try {
    await writeFileAtomic(path, serializeUidState(state));
  } catch (error) {
    throw storeIoError('writing the UID state', error);
  }
}

/** Allocates a native UIDL not in `used`, advancing `nextUid` (never reused). */
export function allocateUidl(state: UidState, used: ReadonlySet<string>): string {
  for (let tries = 0; tries < 1_000_000; tries++) {
    const uidl = formatUidl(state.nextUid, state.uidValidity);
    state.nextUid += 1;
    if (!used.has(uidl)) return uidl;
  }
  throw new StoreError('ERR_STORE_CORRUPT', 'could not allocate a fresh UIDL; the UID state is inconsistent');
}
