// The secret scan of a test run (issue 3: "a secret scan over every log line and error message
// produced by the whole test run finds no token"). The ledger (dev/secret-ledger.ts)
// lists every secret the run minted, one a line; this module looks for each of them in the files
// the run wrote its output to, without ever printing a secret: a finding names the ledger line.
//
// Each secret of at least MIN_SECRET_LENGTH characters is looked for in three forms:
// - `exact`: the value itself;
// - `jwt-signature`: the third part of a JWS compact token alone (a leaked signature is a leak);
// - `base64` / `base64url`: the value inside base64 text (a logged SASL XOAUTH2 or OAUTHBEARER
//   line carries the token base64-encoded at any offset: for each of the three alignments, the
//   base64 of the whole 3-byte groups inside the secret appears verbatim).
// Shorter values are ignored: a 6-character string turns up by chance.
//
// Search: Rabin–Karp on the last ANCHOR characters of every needle (the tail of a JWT is its
// signature, unique per token, where the head is a header every token shares), files read in
// chunks as latin1 so that byte offsets are character offsets.
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Values shorter than this are not scanned for (false positives). */
export const MIN_SECRET_LENGTH = 16;
const ANCHOR = 16;
const BASE = 257;
const CHUNK = 8 * 1024 * 1024;
const FILTER_BITS = 22;

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)$/;

/**
 * The strings to look for for one secret, each with its form.
 * @param {string} secret
 * @returns {{ text: string, form: 'exact' | 'jwt-signature' | 'base64' | 'base64url' }[]}
 */
export function needlesFor(secret) {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) return [];
  const out = [{ text: secret, form: 'exact' }];
  const signature = JWS.exec(secret)?.[1];
  if (signature && signature.length >= MIN_SECRET_LENGTH)
    out.push({ text: signature, form: 'jwt-signature' });
  for (let align = 0; align < 3; align++) {
    const groups = Math.floor((secret.length - align) / 3);
    const core = Buffer.from(secret.slice(align, align + groups * 3), 'latin1');
    const b64 = core.toString('base64');
    if (b64.length < MIN_SECRET_LENGTH) continue;
    out.push({ text: b64, form: 'base64' });
    const url = core.toString('base64url');
    if (url !== b64) out.push({ text: url, form: 'base64url' });
  }
  return out;
}

function hashOf(text, start) {
  let h = 0;
  for (let i = start; i < start + ANCHOR; i++) h = (Math.imul(h, BASE) + text.charCodeAt(i)) | 0;
  return h;
}

/**
 * A scanner for the given ledger lines (index + 1 = ledger line number).
 * @param {readonly string[]} ledgerLines
 */
export function createSecretScanner(ledgerLines) {
  /** @type {{ text: string, form: string, line: number }[]} */
  const needles = [];
  const seen = new Set();
  let secrets = 0;
  let ignored = 0;
  ledgerLines.forEach((value, index) => {
    if (!value) return;
    const forms = needlesFor(value);
    if (forms.length === 0) {
      ignored++;
      return;
    }
    if (seen.has(value)) return;
    seen.add(value);
    secrets++;
    for (const needle of forms) needles.push({ ...needle, line: index + 1 });
  });
  const byAnchor = new Map();
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  const mask = (1 << FILTER_BITS) - 1;
  let longest = ANCHOR;
  needles.forEach((needle, index) => {
    const h = hashOf(needle.text, needle.text.length - ANCHOR);
    const list = byAnchor.get(h);
    if (list) list.push(index);
    else byAnchor.set(h, [index]);
    filter[(h & mask) >>> 3] |= 1 << (h & 7);
    longest = Math.max(longest, needle.text.length);
  });
  let power = 1; // BASE^(ANCHOR-1) mod 2^32
  for (let i = 1; i < ANCHOR; i++) power = Math.imul(power, BASE);

  /**
   * Calls onHit(needle, start) for each needle that ends in text at or after `from`.
   * @param {string} text
   * @param {number} from
   * @param {(needle: { text: string, form: string, line: number }, start: number) => void} onHit
   */
  function scanText(text, from, onHit) {
    if (needles.length === 0 || text.length < ANCHOR) return;
    let h = hashOf(text, 0);
    for (let end = ANCHOR; ; end++) {
      if (end >= from && filter[(h & mask) >>> 3] & (1 << (h & 7))) {
        const list = byAnchor.get(h);
        if (list) {
          for (const index of list) {
            const needle = needles[index];
            const start = end - needle.text.length;
            if (start >= 0 && text.startsWith(needle.text, start)) onHit(needle, start);
          }
        }
      }
      if (end >= text.length) break;
      h = (Math.imul(h - Math.imul(text.charCodeAt(end - ANCHOR), power), BASE) + text.charCodeAt(end)) | 0;
    }
  }

  /**
   * Scans one file in chunks. Findings carry the ledger line, the form, the byte offset and the
   * line number in the file — never the secret.
   * @param {string} path
   */
  function scanFile(path) {
    const findings = [];
    const fd = openSync(path, 'r');
    const buffer = Buffer.alloc(CHUNK);
    let carry = '';
    let offset = 0; // file offset of the first character of `carry + chunk`
    let linesBefore = 0; // newlines before `carry + chunk`
    let bytes = 0;
    try {
      for (;;) {
        const read = readSync(fd, buffer, 0, CHUNK, null);
        if (read === 0) break;
        bytes += read;
        // Decoded in one piece: charCodeAt on a concatenated (cons) string is much slower.
        const text = Buffer.concat([Buffer.from(carry, 'latin1'), buffer.subarray(0, read)]).toString(
          'latin1',
        );
        scanText(text, carry.length + 1, (needle, start) => {
          let line = linesBefore + 1;
          for (let i = text.indexOf('\n'); i !== -1 && i < start; i = text.indexOf('\n', i + 1)) line++;
          findings.push({
            ledgerLine: needle.line,
            form: needle.form,
            file: path,
            offset: offset + start,
            line,
          });
        });
        const keep = Math.min(text.length, longest - 1);
        const dropped = text.length - keep;
        for (let i = text.indexOf('\n'); i !== -1 && i < dropped; i = text.indexOf('\n', i + 1))
          linesBefore++;
        offset += dropped;
        carry = text.slice(dropped);
      }
    } finally {
      closeSync(fd);
    }
    return { bytes, findings };
  }

  return { secrets, ignored, needles: needles.length, scanText, scanFile };
}

/** The ledger's lines (a missing ledger is an empty one). */
export function readLedger(path) {
  let text = '';
  try {
    text = readFileSync(path, 'latin1');
  } catch (error) {
    if (error?.code !== 'ENOENT') throw error;
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Every regular file under `dir`, recursively, except the paths in `exclude`. */
export function filesUnder(dir, exclude = new Set()) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (exclude.has(path)) continue;
    const info = statSync(path);
    if (info.isDirectory()) out.push(...filesUnder(path, exclude));
    else if (info.isFile()) out.push(path);
  }
  return out;
}

/**
 * Scans `files` for every secret of the ledger.
 * @param {readonly string[]} ledgerLines
 * @param {readonly string[]} files
 */
export function scanForSecrets(ledgerLines, files) {
  const scanner = createSecretScanner(ledgerLines);
  let bytes = 0;
  const findings = [];
  for (const file of files) {
    const result = scanner.scanFile(file);
    bytes += result.bytes;
    findings.push(...result.findings);
  }
  return { secrets: scanner.secrets, ignored: scanner.ignored, bytes, findings };
}
