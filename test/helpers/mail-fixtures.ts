// Deterministic mail for tests and benchmarks, written into a Maildir's new/ with LF line endings
// as Postfix delivers. Every message records what a POP3 server sends for it (LF -> CRLF, the
// "wire bytes", before dot-stuffing): size and SHA-256, so 2,000 messages or a 50 MB one can be
// checked byte for byte without keeping them in memory.
//
// Call `dovecot.maildirOf(user)` first when the Maildir belongs to the Dovecot harness: it creates
// new/ cur/ tmp/ with the right owner; files written here are mode 0644 and readable by it.
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chown, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type FixtureKind =
  | 'uniform'
  | 'plain'
  | 'dots'
  | 'utf8'
  | 'latin1'
  | 'long-lines'
  | 'folded-headers'
  | 'attachment'
  | 'no-final-newline'
  | 'headers-only'
  | 'ends-with-dot-line'
  | 'large-attachment';

export interface FixtureMessage {
  /** 1-based position in delivery order (what POP3 numbering follows for these names). */
  readonly index: number;
  /** Maildir base name (unique part); Dovecot may later move the file to cur/ with `:2,` flags. */
  readonly name: string;
  /** Where it was written (new/NAME). */
  readonly path: string;
  readonly kind: FixtureKind;
  readonly messageId: string;
  /** Bytes on disk (LF endings). */
  readonly size: number;
  /** Bytes on the wire (LF -> CRLF), as LIST reports and RETR delivers after dot-unstuffing. */
  readonly wireSize: number;
  /** SHA-256 (hex) of the wire bytes. */
  readonly wireSha256: string;
  /**
   * What a POP3 client reads from RETR after dot-unstuffing: the wire bytes, plus CRLF when the
   * file lacks a final newline (the server must end the last line before `.`; Dovecot does, and
   * LIST still reports `wireSize`).
   */
  readonly retrievedSize: number;
  readonly retrievedSha256: string;
  /** False for the message written without a final newline. */
  readonly endsWithNewline: boolean;
}

export interface WriteOptions {
  /** Seed of the deterministic generator. Default 1. */
  seed?: number;
  /** chown every file to this owner (e.g. the Dovecot harness's mailUid/mailGid). */
  owner?: { uid: number; gid: number };
  /** Number of the first message (for names and Message-IDs); default 1. */
  firstIndex?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');

/** LF -> CRLF for bare LFs (an existing CRLF stays), as Dovecot sends a Maildir file. */
export function toWireBytes(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = bytes.indexOf(LF); i !== -1; i = bytes.indexOf(LF, i + 1)) {
    if (i > 0 && bytes[i - 1] === CR) continue;
    parts.push(bytes.subarray(start, i), CRLF);
    start = i + 1;
  }
  if (start === 0) return Buffer.from(bytes);
  parts.push(bytes.subarray(start));
  return Buffer.concat(parts);
}

/** A streaming LF -> CRLF Transform (state carried across chunks). */
export function wireTransform(): Transform {
  let lastWasCR = false;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) {
      if (chunk.length === 0) return callback();
      // An LF that completes a CRLF split across chunks stays as it is.
      const out =
        chunk[0] === LF && lastWasCR
          ? Buffer.concat([chunk.subarray(0, 1), toWireBytes(chunk.subarray(1))])
          : toWireBytes(chunk);
      lastWasCR = chunk[chunk.length - 1] === CR;
      callback(null, out);
    },
  });
}

/** The wire bytes of a file (for small messages). */
export async function expectedWireBytes(path: string): Promise<Buffer> {
  return toWireBytes(await readFile(path));
}

/** What RETR yields after dot-unstuffing for a file: wire bytes, CRLF appended if it lacks one. */
export async function expectedRetrievedBytes(path: string): Promise<Buffer> {
  const wire = await expectedWireBytes(path);
  return wire.length === 0 || wire[wire.length - 1] !== LF ? Buffer.concat([wire, CRLF]) : wire;
}

/** Size and SHA-256 of a file's wire bytes, streamed (for the 50 MB message). */
export async function wireDigest(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), wireTransform(), async (source) => {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { size, sha256: hash.digest('hex') };
}

/** Size and SHA-256 of bytes a client retrieved, for comparison with a FixtureMessage. */
export function digestOf(bytes: Buffer): { size: number; sha256: string } {
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Finds a message's current file in new/ or cur/ (Dovecot moves it and appends flags). */
export async function findMessageFile(maildir: string, name: string): Promise<string | undefined> {
  for (const sub of ['new', 'cur']) {
    const found = (await readdir(join(maildir, sub))).find((f) => f === name || f.startsWith(`${name}:`));
    if (found) return join(maildir, sub, found);
  }
  return undefined;
}

// --- deterministic generator ---------------------------------------------------------------

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'the quick brown fox jumps over lazy dog mail server token client fetch message line body header ' +
  'pop3 oauth bearer refresh access maildir deliver stream buffer socket secure transport layer';
const POOL_SIZE = 1 << 20;
const pools = new Map<number, Buffer>();

/** 1 MiB of ASCII text, lines of 20-76 characters ending in LF, none starting with a dot. */
function textPool(seed: number): Buffer {
  const cached = pools.get(seed);
  if (cached) return cached;
  const rnd = prng(seed ^ 0x5eed);
  const words = WORDS.split(' ');
  const out = Buffer.allocUnsafe(POOL_SIZE);
  let pos = 0;
  let line = 0;
  const target = () => 20 + Math.floor(rnd() * 57);
  let want = target();
  while (pos < POOL_SIZE) {
    const word = words[Math.floor(rnd() * words.length)]!;
    if (line > 0 && line + 1 + word.length > want) {
      out[pos++] = LF;
      line = 0;
      want = target();
      continue;
    }
    if (line > 0) out[pos++] = 0x20;
    if (pos >= POOL_SIZE) break;
    pos += out.write(word, pos, 'latin1');
    line += word.length + 1;
  }
  out[POOL_SIZE - 1] = LF;
  pools.set(seed, out);
  return out;
}

/** `length` bytes of pool text starting at a line boundary, ending in LF. */
function text(seed: number, rnd: () => number, length: number): Buffer {
  const pool = textPool(seed);
  if (length <= 0) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let left = length;
  while (left > 0) {
    const from = pool.indexOf(LF, Math.floor(rnd() * (POOL_SIZE - 1))) + 1;
    const take = Math.min(left, POOL_SIZE - from);
    if (take <= 0) continue;
    parts.push(pool.subarray(from, from + take));
    left -= take;
  }
  const body = Buffer.concat(parts, length);
  body[length - 1] = LF;
  return body;
}

function headers(i: number, seed: number, extra: string[] = []): string {
  const date = new Date(Date.UTC(2024, 0, 1) + i * 60_000).toUTCString().replace('GMT', '+0000');
  return [
    'Return-Path: <sender@example.test>',
    `Received: from mx.example.test (mx.example.test [192.0.2.${i % 250}])\n\tby mail.popgate.test (Postfix) with ESMTPS id F${i}\n\tfor <alice@example.test>; ${date}`,
    `From: Sender ${i} <sender@example.test>`,
    'To: Alice <alice@example.test>',
    `Subject: fixture ${i}`,
    `Date: ${date}`,
    `Message-ID: <fixture-${seed}-${i}@popgate.test>`,
    'MIME-Version: 1.0',
    ...extra,
  ].join('\n');
}

function base64Lines(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
}

function maildirName(i: number, seed: number, kind: string): string {
  return `${1_700_000_000 + i}.M${i}P${seed}.${kind}.popgate-fixture`;
}

const MIXED_CYCLE: readonly FixtureKind[] = [
  'plain',
  'dots',
  'utf8',
  'plain',
  'latin1',
  'long-lines',
  'folded-headers',
  'attachment',
  'plain',
  'headers-only',
  'ends-with-dot-line',
];

/** Body size for a mixed message: mostly 1-20 KiB, some tiny, a few 100 KiB - 1 MiB. */
function mixedSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.1) return 50 + Math.floor(rnd() * 400);
  if (r < 0.97) return 1024 + Math.floor(rnd() * 19 * 1024);
  return 100 * 1024 + Math.floor(rnd() * 900 * 1024);
}

function mixedMessage(i: number, kind: FixtureKind, seed: number, rnd: () => number): Buffer {
  const size = mixedSize(rnd);
  const ct8 = (charset: string) => [
    `Content-Type: text/plain; charset=${charset}`,
    'Content-Transfer-Encoding: 8bit',
  ];
  switch (kind) {
    case 'dots': {
      const dotty = '.starts with one dot\n..starts with two\n.\n...\n. space after dot\n.\t\n';
      const half = Math.floor(size / 2);
      return Buffer.concat([
        Buffer.from(`${headers(i, seed)}\n\n`),
        text(seed, rnd, half),
        Buffer.from(dotty),
        text(seed, rnd, size - half),
        Buffer.from('.\n..\n'),
      ]);
    }
    case 'utf8': {
      const line = 'Grüße aus Köln, ñandú, 日本語のテキスト, emoji 📬, Ελληνικά\n';
      const body = line.repeat(Math.max(1, Math.floor(size / Buffer.byteLength(line))));
      return Buffer.from(`${headers(i, seed, ct8('utf-8'))}\n\n${body}`, 'utf8');
    }
    case 'latin1': {
      const line = Buffer.from(
        'Caf\xe9 cr\xe8me br\xfbl\xe9e, \xa1Se\xf1or! \xbd \xa9 \xff\xfe\xa0end\n',
        'latin1',
      );
      const body = Buffer.concat(Array(Math.max(1, Math.floor(size / line.length))).fill(line));
      return Buffer.concat([Buffer.from(`${headers(i, seed, ct8('iso-8859-1'))}\n\n`), body]);
    }
    case 'long-lines': {
      const lengths = [998, 1000, 1001, 4096, 20_000, i % 97 === 5 ? 100_000 : 8192];
      const longs = lengths.map((n) => `${'x'.repeat(n - 1)}.\n`).join('');
      return Buffer.concat([Buffer.from(`${headers(i, seed)}\n\n${longs}`), text(seed, rnd, size)]);
    }
    case 'folded-headers': {
      const folded = [
        'Subject: a subject folded\n  over three\n\tlines with tabs',
        'X-Long: ' + Array.from({ length: 40 }, (_, k) => `token${k}`).join('\n '),
        'X-Leading-Dot:\n .folded continuation starting with a dot',
      ];
      return Buffer.concat([Buffer.from(`${headers(i, seed, folded)}\n\n`), text(seed, rnd, size)]);
    }
    case 'attachment': {
      const binary = keystream(seed * 1_000_003 + i, Math.floor(size * 0.7));
      const mime = [
        'Content-Type: multipart/mixed; boundary="b-' + i + '"',
        '',
        'This is a multi-part message in MIME format.',
        `--b-${i}`,
        'Content-Type: text/plain; charset=us-ascii',
        '',
        'See attachment.',
        `--b-${i}`,
        'Content-Type: application/octet-stream; name="data.bin"',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="data.bin"',
        '',
        base64Lines(binary),
        `--b-${i}--`,
        '',
      ].join('\n');
      return Buffer.from(`${headers(i, seed)}\n${mime}`);
    }
    case 'no-final-newline': {
      const body = text(seed, rnd, size);
      return Buffer.concat([
        Buffer.from(`${headers(i, seed)}\n\n`),
        body,
        Buffer.from('last line without newline'),
      ]);
    }
    case 'headers-only':
      return Buffer.from(`${headers(i, seed)}\n`);
    case 'ends-with-dot-line':
      return Buffer.concat([
        Buffer.from(`${headers(i, seed)}\n\n`),
        text(seed, rnd, size),
        Buffer.from('.\n'),
      ]);
    default: {
      const body = text(seed, rnd, size);
      // a few mbox-sensitive lines for fetch's mbox sink
      const from = i % 13 === 0 ? Buffer.from('From the start of a line\n>From quoted\n') : Buffer.alloc(0);
      return Buffer.concat([Buffer.from(`${headers(i, seed)}\n\n`), from, body]);
    }
  }
}

/** Deterministic pseudo-random bytes (AES-128-CTR keystream of the seed). */
function keystream(seed: number, length: number): Buffer {
  const key = createHash('sha256').update(`popgate-fixture-${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(length));
}

async function store(
  maildir: string,
  index: number,
  kind: FixtureKind,
  seed: number,
  bytes: Buffer,
  owner: WriteOptions['owner'],
): Promise<FixtureMessage> {
  const name = maildirName(index, seed, kind);
  const path = join(maildir, 'new', name);
  await writeFile(path, bytes, { mode: 0o644 });
  if (owner) await chown(path, owner.uid, owner.gid);
  const wire = toWireBytes(bytes);
  const endsWithNewline = bytes[bytes.length - 1] === LF;
  const retrieved = endsWithNewline ? wire : Buffer.concat([wire, CRLF]);
  return Object.freeze({
    index,
    name,
    path,
    kind,
    messageId: `<fixture-${seed}-${index}@popgate.test>`,
    size: bytes.length,
    wireSize: wire.length,
    wireSha256: createHash('sha256').update(wire).digest('hex'),
    retrievedSize: retrieved.length,
    retrievedSha256: createHash('sha256').update(retrieved).digest('hex'),
    endsWithNewline,
  });
}

async function inBatches<T>(count: number, make: (k: number) => Promise<T>, parallel = 16): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      for (let k = next++; k < count; k = next++) out[k] = await make(k);
    }),
  );
  return out;
}

async function ensureMaildir(maildir: string): Promise<void> {
  for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
}

/** `count` messages of exactly `size` bytes on disk each (headers + text body, LF endings). */
export async function writeUniformMessages(
  maildir: string,
  count: number,
  size: number,
  options: WriteOptions = {},
): Promise<FixtureMessage[]> {
  const seed = options.seed ?? 1;
  const first = options.firstIndex ?? 1;
  await ensureMaildir(maildir);
  return inBatches(count, async (k) => {
    const i = first + k;
    const head = Buffer.from(`${headers(i, seed)}\n\n`);
    if (head.length + 1 > size)
      throw new RangeError(`size ${size} is smaller than the headers (${head.length + 1})`);
    const bytes = Buffer.concat([head, text(seed, prng(seed * 7919 + i), size - head.length)]);
    return store(maildir, i, 'uniform', seed, bytes, options.owner);
  });
}

/**
 * The mixed set (default 2,000 messages, about 40 MB): plain text; lines starting with `.`, `..`
 * and a line that is only `.`; UTF-8 and Latin-1 8-bit bodies; long lines (up to 100,000
 * characters); folded headers; base64 attachments; headers only; a body ending in a `.` line;
 * `From ` lines; and a few messages without a final newline. Sizes from 50 B to 1 MiB.
 */
export async function writeMixedMessages(
  maildir: string,
  options: WriteOptions & { count?: number } = {},
): Promise<FixtureMessage[]> {
  const seed = options.seed ?? 1;
  const first = options.firstIndex ?? 1;
  const count = options.count ?? 2000;
  await ensureMaildir(maildir);
  return inBatches(count, async (k) => {
    const i = first + k;
    const rnd = prng(seed * 104_729 + i);
    const kind: FixtureKind = k % 250 === 249 ? 'no-final-newline' : MIXED_CYCLE[k % MIXED_CYCLE.length]!;
    return store(maildir, i, kind, seed, mixedMessage(i, kind, seed, rnd), options.owner);
  });
}

/**
 * One message with a base64 attachment of `attachmentBytes` binary bytes (default 50 MiB, about
 * 69 MB on disk), written as a stream: memory stays flat.
 */
export async function writeLargeAttachmentMessage(
  maildir: string,
  options: WriteOptions & { attachmentBytes?: number } = {},
): Promise<FixtureMessage> {
  const seed = options.seed ?? 1;
  const index = options.firstIndex ?? 1;
  const total = options.attachmentBytes ?? 50 * 1024 * 1024;
  await ensureMaildir(maildir);
  const name = maildirName(index, seed, 'large-attachment');
  const tmpPath = join(maildir, 'tmp', name);
  const path = join(maildir, 'new', name);
  const head = Buffer.from(
    `${headers(index, seed, ['Content-Type: multipart/mixed; boundary="big"'])}\n\n--big\n` +
      'Content-Type: text/plain\n\nA large attachment follows.\n--big\n' +
      'Content-Type: application/octet-stream; name="big.bin"\nContent-Transfer-Encoding: base64\n\n',
  );
  const tail = Buffer.from('--big--\n');
  const key = createHash('sha256').update(`popgate-large-${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const chunkRaw = 57 * 16 * 1024; // a multiple of 57 bytes = whole 76-character base64 lines
  const zeros = Buffer.alloc(chunkRaw);
  const hash = createHash('sha256');
  let size = 0;
  let wireSize = 0;
  function* chunks(): Generator<Buffer> {
    yield head;
    for (let done = 0; done < total; done += chunkRaw) {
      const raw = cipher.update(zeros.subarray(0, Math.min(chunkRaw, total - done)));
      const b64 = raw.toString('base64');
      const lines = Buffer.allocUnsafe(b64.length + Math.ceil(b64.length / 76));
      let o = 0;
      for (let p = 0; p < b64.length; p += 76) {
        o += lines.write(b64.slice(p, p + 76), o, 'latin1');
        lines[o++] = LF;
      }
      yield lines.subarray(0, o);
    }
    yield tail;
  }
  await pipeline(
    async function* () {
      for (const chunk of chunks()) {
        size += chunk.length;
        const wire = toWireBytes(chunk);
        wireSize += wire.length;
        hash.update(wire);
        yield chunk;
      }
    },
    createWriteStream(tmpPath, { mode: 0o644 }),
  );
  if (options.owner) await chown(tmpPath, options.owner.uid, options.owner.gid);
  await rename(tmpPath, path);
  const sha256 = hash.digest('hex');
  return Object.freeze({
    index,
    name,
    path,
    kind: 'large-attachment',
    messageId: `<fixture-${seed}-${index}@popgate.test>`,
    size,
    wireSize,
    wireSha256: sha256,
    retrievedSize: wireSize,
    retrievedSha256: sha256,
    endsWithNewline: true,
  });
}

/** Delivers one message (tmp/ then rename into new/), as an MDA would; returns its file name. */
export async function deliverMessage(maildir: string, bytes: Buffer, name: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(name)) throw new Error('unsafe Maildir file name');
  await ensureMaildir(maildir);
  const tmp = join(maildir, 'tmp', name);
  await writeFile(tmp, bytes, { mode: 0o644 });
  await rename(tmp, join(maildir, 'new', name));
  return join(maildir, 'new', name);
}
