// Proves the mail fixtures (test/helpers/mail-fixtures.ts): deterministic, covering the edge cases
// the client, fetch and server proofs need, and with wire expectations that match what a real
// Dovecot sends for the same Maildir files (fetched with curl).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { startDovecot } from '../helpers/dovecot.ts';
import {
  expectedRetrievedBytes,
  findMessageFile,
  toWireBytes,
  wireDigest,
  wireTransform,
  writeLargeAttachmentMessage,
  writeMixedMessages,
  writeUniformMessages,
} from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-fixtures-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '300', ...args],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
      (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
    );
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the same seed writes the same messages and another seed writes different ones', async (t) => {
  const [a, b, c] = [await tempDir(t), await tempDir(t), await tempDir(t)];
  const one = await writeMixedMessages(a, { count: 60, seed: 7 });
  const two = await writeMixedMessages(b, { count: 60, seed: 7 });
  const other = await writeMixedMessages(c, { count: 60, seed: 8 });
  assert.deepEqual(
    one.map((m) => m.wireSha256),
    two.map((m) => m.wireSha256),
  );
  for (const m of one)
    assert.equal(sha256(await readFile(m.path)), sha256(await readFile(two[m.index - 1]!.path)));
  assert.notDeepEqual(
    one.map((m) => m.wireSha256),
    other.map((m) => m.wireSha256),
  );
});

test('uniform messages have exactly the requested size on disk and LF endings only', async (t) => {
  const dir = await tempDir(t);
  const msgs = await writeUniformMessages(dir, 25, 10 * 1024);
  assert.equal(msgs.length, 25);
  for (const m of msgs) {
    const bytes = await readFile(m.path);
    assert.equal(bytes.length, 10 * 1024);
    assert.equal(bytes.includes(0x0d), false);
    assert.equal(m.wireSize, bytes.length + bytes.filter((x) => x === 0x0a).length);
  }
});

test('the mixed set holds every edge case the POP3 proofs need', async (t) => {
  const dir = await tempDir(t);
  const msgs = await writeMixedMessages(dir);
  assert.equal(msgs.length, 2000);
  const seen = {
    dotLine: false,
    dotDot: false,
    onlyDot: false,
    utf8: false,
    latin1: false,
    longLine: false,
    folded: false,
    noFinalNewline: 0,
    endsWithDotLine: false,
    fromLine: false,
    base64: false,
  };
  let total = 0;
  for (const m of msgs) {
    const bytes = await readFile(m.path);
    total += bytes.length;
    assert.equal(bytes.includes(0x0d), false, `${m.name} has a CR`);
    assert.equal(bytes.includes(0x00), false, `${m.name} has a NUL`);
    const text = bytes.toString('latin1');
    seen.dotLine ||= /\n\.[^.\n]/.test(text);
    seen.dotDot ||= /\n\.\.[^.]/.test(text);
    seen.onlyDot ||= text.includes('\n.\n');
    seen.utf8 ||= bytes.includes(Buffer.from('日本語'));
    seen.latin1 ||= text.includes('Caf\xe9');
    seen.longLine ||= /[^\n]{20000}/.test(text);
    seen.folded ||= /\n[A-Za-z-]+:[^\n]*\n[ \t]+\S/.test(text);
    if (!m.endsWithNewline) seen.noFinalNewline++;
    seen.endsWithDotLine ||= text.endsWith('\n.\n');
    seen.fromLine ||= text.includes('\nFrom ');
    seen.base64 ||= text.includes('Content-Transfer-Encoding: base64');
  }
  for (const [feature, present] of Object.entries(seen)) assert.ok(present, `no message has ${feature}`);
  assert.ok(total > 20e6 && total < 120e6, `mixed set is ${total} bytes`);
  assert.equal(new Set(msgs.map((m) => m.messageId)).size, 2000);
});

test('LF to CRLF conversion gives the same bytes for any split into chunks', async () => {
  const input = Buffer.from('a\nb\r\n\nc\r\r\n.\n..\nend');
  const whole = toWireBytes(input);
  assert.equal(whole.toString(), 'a\r\nb\r\n\r\nc\r\r\n.\r\n..\r\nend');
  for (let cut = 0; cut <= input.length; cut++) {
    for (let cut2 = cut; cut2 <= input.length; cut2++) {
      const parts = [input.subarray(0, cut), input.subarray(cut, cut2), input.subarray(cut2)];
      const chunks: Buffer[] = [];
      for await (const chunk of Readable.from(parts).pipe(wireTransform())) chunks.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(chunks), whole, `split at ${cut},${cut2}`);
    }
  }
});

test('Dovecot serves all 2,000 mixed messages exactly as the fixtures predict (LIST sizes and RETR bytes)', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const user = 'mixed@example.test';
  const d = await startDovecot({ users: [user] });
  t.after(() => d.stop());
  const maildir = await d.maildirOf(user);
  const msgs = await writeMixedMessages(maildir);
  const out = await tempDir(t);
  const auth = [
    '--oauth2-bearer',
    await d.mintToken(user, { expiresIn: 1200 }),
    '-u',
    `${user}:`,
    '--cacert',
    d.caCertPath,
  ];
  const list = await curl([...auth, `pop3s://${d.host}:${d.popsPort}/`]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout, msgs.map((m) => `${m.index} ${m.wireSize}\r\n`).join(''));
  const retr = await curl([...auth, '-o', join(out, '#1'), `pop3s://${d.host}:${d.popsPort}/[1-2000]`]);
  assert.equal(retr.code, 0, retr.stderr);
  assert.equal((await readdir(out)).length, 2000);
  const mismatched: string[] = [];
  for (const m of msgs) {
    const got = await readFile(join(out, String(m.index)));
    if (got.length !== m.retrievedSize || sha256(got) !== m.retrievedSha256)
      mismatched.push(`${m.index}:${m.kind}`);
  }
  assert.deepEqual(mismatched, []);
  // the file-based expectation agrees for the messages without a final newline
  const odd = msgs.find((m) => !m.endsWithNewline)!;
  const moved = await findMessageFile(maildir, odd.name); // Dovecot moved it to cur/
  assert.ok(moved?.includes('/cur/'), `expected ${odd.name} in cur/, found ${moved}`);
  assert.deepEqual(await readFile(join(out, String(odd.index))), await expectedRetrievedBytes(moved!));
});

test('Dovecot serves the 50 MiB-attachment message byte-identical to its streamed digest', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const user = 'large@example.test';
  const d = await startDovecot({ users: [user] });
  t.after(() => d.stop());
  const maildir = await d.maildirOf(user);
  const big = await writeLargeAttachmentMessage(maildir);
  assert.ok(big.size > 69e6, `large message is ${big.size} bytes`);
  assert.deepEqual(await wireDigest(big.path), { size: big.wireSize, sha256: big.wireSha256 });
  const out = await tempDir(t);
  const auth = [
    '--oauth2-bearer',
    await d.mintToken(user, { expiresIn: 1200 }),
    '-u',
    `${user}:`,
    '--cacert',
    d.caCertPath,
  ];
  const r = await curl([...auth, '-o', join(out, 'big'), `pop3s://${d.host}:${d.popsPort}/1`]);
  assert.equal(r.code, 0, r.stderr);
  const { size, sha256: digest } = await wireDigest(join(out, 'big')); // already CRLF: unchanged
  assert.equal(size, big.retrievedSize);
  assert.equal(digest, big.retrievedSha256);
});
