import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { CommandSink } from '../../src/fetch/sinks/command.ts';
import { MaildirSink } from '../../src/fetch/sinks/maildir.ts';
import { MboxSink } from '../../src/fetch/sinks/mbox.ts';
import { LocalForm } from '../../src/fetch/sinks/transform.ts';
import type { Intent, Sink } from '../../src/fetch/sinks/types.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-sinks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function wire(text: string): Readable {
  return Readable.from([Buffer.from(text.replace(/\n/g, '\r\n'))]);
}

async function convert(
  chunks: Buffer[],
  options: { mboxQuote?: boolean },
): Promise<{ out: string; id: string | undefined }> {
  const form = new LocalForm(options);
  const parts: Buffer[] = [];
  form.on('data', (c: Buffer) => parts.push(c));
  const done = new Promise((resolve) => form.on('end', resolve));
  for (const c of chunks) form.write(c);
  form.end();
  await done;
  return { out: Buffer.concat(parts).toString('latin1'), id: form.messageId };
}

test('local form: any split of the input gives the same LF output, quoting and Message-ID', async () => {
  const alphabet = fc.constantFrom(
    '\r\n',
    '\r',
    '\n',
    'From ',
    '>',
    '>From ',
    'a',
    'Message-ID: <x@y>',
    ' ',
    '\r\n\r\n',
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(alphabet, { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.boolean(),
      async (parts, cuts, quote) => {
        const input = Buffer.from(parts.join(''), 'latin1');
        const whole = await convert([input], { mboxQuote: quote });
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(input.subarray(last, p));
          last = p;
        }
        chunks.push(input.subarray(last));
        const split = await convert(chunks, { mboxQuote: quote });
        assert.equal(split.out, whole.out);
        assert.equal(split.id, whole.id);
        // Reference: CRLF -> LF, then mboxrd quoting line by line.
        let expected = input.toString('latin1').replace(/\r\n/g, '\n');
        if (quote) {
          expected = expected
            .split('\n')
            .map((line) => (/^>*From /.test(line) ? `>${line}` : line))
            .join('\n');
        }
        assert.equal(whole.out, expected);
      },
    ),
    { numRuns: 300 },
  );
});

/** mboxrd quoting as the definition says it, line by line, on the whole LF text. */
function referenceQuote(text: string): string {
  return text
    .split('\n')
    .map((line) => (/^>*From /.test(line) ? `>${line}` : line))
    .join('\n');
}

test('mbox quoting equals the line-by-line reference for long > runs split at any chunk boundaries', async () => {
  const piece = fc.oneof(
    fc.integer({ min: 1, max: 3000 }).map((n) => '>'.repeat(n)),
    fc.constantFrom('From ', 'From', 'Fro', 'F', 'x', '\n', '\r\n', '>F', ' '),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(piece, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      async (parts, cuts) => {
        const input = Buffer.from(parts.join(''), 'latin1');
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(input.subarray(last, p));
          last = p;
        }
        chunks.push(input.subarray(last));
        const { out } = await convert(chunks, { mboxQuote: true });
        assert.equal(out, referenceQuote(input.toString('latin1').replace(/\r\n/g, '\n')));
      },
    ),
    { numRuns: 300 },
  );
});

test('mbox quoting holds back at most 4 bytes, however long a line of > runs (64 MiB, linear work)', async () => {
  // A hostile server may send one huge line of `>`. The quoting must pass it on as it arrives
  // (holding only a partial `From `), not keep the undecided line and rescan it on every chunk.
  const form = new LocalForm({ mboxQuote: true });
  form.resume();
  const chunk = Buffer.alloc(64 * 1024, '>');
  let fed = 0;
  let worstHeld = 0;
  for (let i = 0; i < 1024; i++) {
    await new Promise((resolve) => form.write(chunk, resolve));
    fed += chunk.length;
    worstHeld = Math.max(worstHeld, fed - form.bytes);
    if (fed - form.bytes > 4) break;
  }
  assert.ok(worstHeld <= 4, `held back ${worstHeld} bytes of a line of >`);
  await new Promise((resolve) => form.write(Buffer.from('Fro'), resolve));
  assert.equal(form.quoteHeldBack, 3, 'a partial From is held back');
  assert.equal(fed - form.bytes + 3, 3);
  const done = new Promise((resolve) => form.on('end', resolve));
  form.end(Buffer.from('m x\n'));
  await done;
  assert.equal(form.bytes, fed + 'From x\n'.length + 1, 'the From line gained one >');
});

test('local form finds a folded Message-ID in the header only', async () => {
  const r = await convert(
    [Buffer.from('Subject: x\r\nMessage-Id:\r\n  <abc@host>\r\n\r\nMessage-ID: <body@x>\r\n')],
    {},
  );
  assert.equal(r.id, '<abc@host>');
});

async function deliver(sink: Sink, uidl: string, text: string, announced: Intent[] = []) {
  const staged = await sink.stage(wire(text), { uidl, size: text.length, account: 'a' });
  return sink.publish([staged], async (intents) => {
    announced.push(...intents);
  });
}

test('maildir: message lands in new/ with LF endings, nothing left in tmp/, announced first', async (t) => {
  const dir = await tempDir(t);
  const sink = new MaildirSink(join(dir, 'Maildir'));
  await sink.open();
  const announced: Intent[] = [];
  const outcomes = await deliver(sink, 'u1', 'Subject: hi\n\nbody\n.line\n', announced);
  assert.deepEqual(outcomes, [{ ok: true }]);
  const names = await readdir(join(dir, 'Maildir', 'new'));
  assert.equal(names.length, 1);
  assert.match(names[0]!, /,S=24$/);
  assert.equal(
    await readFile(join(dir, 'Maildir', 'new', names[0]!), 'utf8'),
    'Subject: hi\n\nbody\n.line\n',
  );
  assert.deepEqual(await readdir(join(dir, 'Maildir', 'tmp')), []);
  assert.equal(announced.length, 1);
  assert.equal((await stat(join(dir, 'Maildir', 'new', names[0]!))).mode & 0o777, 0o600);
  assert.equal(await sink.recover(announced[0]!.key), 'delivered');
});

test('maildir: recover says absent for an announced name that never reached new/ or cur/', async (t) => {
  const dir = await tempDir(t);
  const sink = new MaildirSink(join(dir, 'M'));
  await sink.open();
  const staged = await sink.stage(wire('a\n'), { uidl: 'u', size: 2, account: 'a' });
  const key = { tmp: 'x', name: 'x,S=1' };
  assert.equal(await sink.recover(key), 'absent');
  await sink.discard(staged);
  assert.deepEqual(await readdir(join(dir, 'M', 'tmp')), []);
});

test('maildir: a message moved to cur/ with flags counts as delivered', async (t) => {
  const dir = await tempDir(t);
  const sink = new MaildirSink(join(dir, 'M'));
  await sink.open();
  await writeFile(join(dir, 'M', 'cur', 'n1,S=3:2,S'), 'abc');
  assert.equal(await sink.recover({ tmp: 'n1', name: 'n1,S=3' }), 'delivered');
});

test('maildir: names are unique across many deliveries', async (t) => {
  const dir = await tempDir(t);
  const sink = new MaildirSink(join(dir, 'M'));
  await sink.open();
  const staged = [];
  for (let i = 0; i < 200; i++)
    staged.push(await sink.stage(wire(`n: ${i}\n`), { uidl: `u${i}`, size: 6, account: 'a' }));
  await sink.publish(staged, async () => undefined);
  assert.equal((await readdir(join(dir, 'M', 'new'))).length, 200);
});

test('mbox: From separator, >From quoting, blank line between messages', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'inbox');
  const sink = new MboxSink(file, { spoolDir: join(dir, 'spool') });
  await sink.open();
  await deliver(sink, 'u1', 'Subject: one\n\nFrom here\n>From there\n');
  await deliver(sink, 'u2', 'Subject: two\n\nno newline at end');
  const text = await readFile(file, 'utf8');
  const parts = text.split(/^From MAILER-DAEMON .*\n/m);
  assert.deepEqual(parts, [
    '',
    'Subject: one\n\n>From here\n>>From there\n\n',
    'Subject: two\n\nno newline at end\n\n',
  ]);
  assert.deepEqual(await readdir(join(dir, 'spool')), []);
  await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' });
});

test('mbox: recover finds a complete append and cuts a torn one', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'inbox');
  const sink = new MboxSink(file, { spoolDir: join(dir, 'spool') });
  await sink.open();
  const announced: Intent[] = [];
  await deliver(sink, 'u1', 'Subject: one\n\nbody\n', announced);
  await deliver(sink, 'u2', 'Subject: two\n\nbody two\n', announced);
  assert.equal(await sink.recover(announced[1]!.key), 'delivered');
  const full = (await stat(file)).size;
  await truncate(file, full - 5);
  assert.equal(await sink.recover(announced[1]!.key), 'absent');
  assert.equal((await stat(file)).size, (announced[1]!.key as { off: number }).off);
  assert.equal(await sink.recover(announced[0]!.key), 'delivered');
});

test('mbox: waits for a dotlock held by a live process, breaks one of a dead process', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'inbox');
  const sink = new MboxSink(file, { spoolDir: join(dir, 'spool'), timeoutMs: 300 });
  await sink.open();
  const { hostname } = await import('node:os');
  await writeFile(`${file}.lock`, `${process.pid} ${hostname()}\n`);
  await assert.rejects(deliver(sink, 'u1', 'a\n'), { code: 'ERR_FETCH_DELIVERY', message: /locked/ });
  await writeFile(`${file}.lock`, `999999999 ${hostname()}\n`);
  assert.deepEqual(await deliver(sink, 'u1', 'a\n'), [{ ok: true }]);
});

test('command: the message arrives on stdin with LF endings; exit 0 is success', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'out');
  const sink = new CommandSink(`cat > ${out}; test "$POPGATE_UIDL" = u1`, {
    spoolDir: join(dir, 'spool'),
    env: process.env,
  });
  await sink.open();
  assert.deepEqual(await deliver(sink, 'u1', 'Subject: x\n\nbody\n'), [{ ok: true }]);
  assert.equal(await readFile(out, 'utf8'), 'Subject: x\n\nbody\n');
});

test('command: a non-zero exit is a failure that reports its stderr', async (t) => {
  const dir = await tempDir(t);
  const sink = new CommandSink('cat >/dev/null; echo "mailbox full" >&2; exit 75', {
    spoolDir: join(dir, 'spool'),
    env: process.env,
  });
  await sink.open();
  const [outcome] = await deliver(sink, 'u1', 'x\n');
  assert.equal(outcome?.ok, false);
  assert.ok(outcome && !outcome.ok);
  assert.equal(outcome.error.code, 'ERR_FETCH_DELIVERY');
  assert.match(outcome.error.message, /status 75.*mailbox full/);
  assert.equal(await sink.recover({}), 'unknown');
});
