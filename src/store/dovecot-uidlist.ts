// Reader for Dovecot's `dovecot-uidlist` (doc.dovecot.org, "Maildir Mailbox Format"), so clients
// moving from Dovecot keep their UIDLs. Version 3 (Dovecot 1.1+):
//
//   3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1
//   25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394:2,S
//   25017 W2481 P<pop3 uidl> :1276533073.M242911P3632.kurkku
//
// Extensions before ` :` are a letter and a value (W = size with CRLF, P = a POP3 UIDL Dovecot
// migrated and serves verbatim). Version 1 (Courier compatible): `1 <uidvalidity> <next uid>`
// then `<uid> <filename>`. popgate only reads this file; Dovecot stays its only writer.
import { errnoOf, storeIoError } from './fs-util.ts';
import { readStateFile } from './maildir-file.ts';
import { baseName } from './maildir-names.ts';
import { isValidUidl } from './uidlist.ts';

export const DOVECOT_UIDLIST_FILE = 'dovecot-uidlist';

export interface DovecotRecord {
  readonly uid: number;
  /** The POP3 UIDL Dovecot serves for this message. */
  readonly uidl: string;
  /** Size with CRLF line endings when Dovecot recorded it (`W` extension). */
  readonly crlfSize?: number;
}

export interface DovecotUidlist {
  readonly uidValidity: number;
  readonly nextUid: number;
  /** Records by base file name. */
  readonly records: ReadonlyMap<string, DovecotRecord>;
}

/**
 * Builds the UIDL Dovecot's `pop3_uidl_format` gives. Supported variables: `%u` (UID), `%v`
 * (UIDVALIDITY), `%f` (base file name), with Dovecot's modifiers `0N` (pad), `X` (hex, printed in
 * lower case as Dovecot 2.x does). Default `%08Xu%08Xv`, Dovecot 2.x's default.
 */
export function dovecotUidl(format: string, uid: number, uidValidity: number, base: string): string {
  return format.replace(/%(0?\d*)([Xx]?)([uvf%])/g, (_all, pad: string, hex: string, key: string) => {
    if (key === '%') return '%';
    if (key === 'f') return base;
    const n = key === 'u' ? uid : uidValidity;
    // Dovecot 2.x's `X` modifier prints lower-case hex (checked against 2.3.19 by the interop test).
    const text = hex === '' ? String(n) : n.toString(16);
    const width = pad === '' ? 0 : Number(pad);
    return text.padStart(width, pad.startsWith('0') ? '0' : ' ');
  });
}

/** Checks a `pop3_uidl_format` value: only the variables popgate can reproduce. */
export function isSupportedUidlFormat(format: string): boolean {
  const stripped = format.replace(/%(0?\d*)([Xx]?)([uvf%])/g, '');
  return !stripped.includes('%') && /^[\x21-\x7e]+$/.test(format) && /%0?\d*[Xx]?u/.test(format);
}

/**
 * Parses dovecot-uidlist text. Lines popgate cannot read are skipped (Dovecot would rebuild
 * them); an unknown version yields undefined so popgate falls back to its own numbering.
 */
export function parseDovecotUidlist(text: string, format = '%08Xu%08Xv'): DovecotUidlist | undefined {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').split(' ');
  let uidValidity: number;
  let nextUid: number;
  const version = header[0];
  if (version === '3') {
    const field = (letter: string) => header.find((f) => f.startsWith(letter))?.slice(1);
    uidValidity = Number(field('V'));
    nextUid = Number(field('N'));
  } else if (version === '1') {
    uidValidity = Number(header[1]);
    nextUid = Number(header[2]);
  } else {
    return undefined;
  }
  if (!Number.isSafeInteger(uidValidity) || !Number.isSafeInteger(nextUid) || uidValidity <= 0)
    return undefined;
  const records = new Map<string, DovecotRecord>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') continue;
    let uidText: string;
    let extensions: string[] = [];
    let fileName: string;
    if (version === '3') {
      const colon = line.indexOf(' :');
      if (colon === -1) continue;
      const head = line.slice(0, colon).split(' ');
      uidText = head[0] ?? '';
      extensions = head.slice(1);
      fileName = line.slice(colon + 2);
    } else {
      const space = line.indexOf(' ');
      if (space === -1) continue;
      uidText = line.slice(0, space);
      fileName = line.slice(space + 1);
    }
    const uid = Number(uidText);
    if (!/^\d{1,10}$/.test(uidText) || uid <= 0 || fileName === '') continue;
    const base = baseName(fileName);
    let uidl = dovecotUidl(format, uid, uidValidity, base);
    let crlfSize: number | undefined;
    for (const ext of extensions) {
      if (ext.startsWith('P') && isValidUidl(ext.slice(1))) uidl = ext.slice(1);
      else if (/^W\d{1,15}$/.test(ext)) crlfSize = Number(ext.slice(1));
    }
    if (!isValidUidl(uidl)) continue;
    records.set(base, crlfSize === undefined ? { uid, uidl } : { uid, uidl, crlfSize });
  }
  return { uidValidity, nextUid, records };
}

/** Reads `<maildir>/dovecot-uidlist`; undefined when absent or of an unknown version. */
export async function loadDovecotUidlist(path: string, format?: string): Promise<DovecotUidlist | undefined> {
  let text: string;
  try {
    text = await readStateFile(path, DOVECOT_UIDLIST_FILE);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw storeIoError('reading dovecot-uidlist', error);
  }
  return parseDovecotUidlist(text, format);
}
