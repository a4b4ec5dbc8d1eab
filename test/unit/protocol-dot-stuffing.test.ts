import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPopgateError } from '../../src/errors.ts';
import { DotDecoder, DotEncoder, DotStuffer, DotUnstuffer } from '../../src/protocol/index.ts';

function cut(data: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => Math.min(p, data.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of sorted) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

function stuff(message: Buffer, points: number[] = []): Buffer {
  const enc = new DotEncoder();
  const out: Buffer[] = [];
  for (const chunk of cut(message, points)) out.push(...enc.push(chunk));
  out.push(...enc.end());
  return Buffer.concat(out);
}

function unstuff(wire: Buffer, points: number[] = []): { body: Buffer; done: boolean; rest: Buffer } {
  const dec = new DotDecoder();
  const body: Buffer[] = [];
  let rest: Buffer = Buffer.alloc(0);
  let done = false;
  for (const chunk of cut(wire, points)) {
    if (done) {
      rest = Buffer.concat([rest, chunk]);
      continue;
    }
    const r = dec.push(chunk);
    body.push(...r.body);
    done = r.done;
    rest = r.rest;
  }
  return { body: Buffer.concat(body), done, rest };
}

const crlfNormalise = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

// Messages built from pieces that stress the edges: dots, CR, LF, CRLF, and ordinary bytes.
const messageArb = fc
  .array(fc.constantFrom('.', '..', '\r\n', '\n', 'a', 'xyz', '.\r\n', '\r', ' ', '\u00e9'), {
    maxLength: 60,
  })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

test('stuff then unstuff gives the message back, line ends normalised to CRLF', () => {
  fc.assert(
    fc.property(messageArb, (msg) => {
      // A lone CR before an LF is content the stuffer keeps; compare on messages without them.
      fc.pre(!/\r(?!\n)/.test(msg.toString('latin1')));
      const wire = stuff(msg);
      const { body, done, rest } = unstuff(wire);
      assert.ok(done);
      assert.equal(rest.length, 0);
      const expected = crlfNormalise(msg);
      const withEol =
        expected.length === 0 || expected.toString('latin1').endsWith('\r\n')
          ? expected
          : Buffer.concat([expected, Buffer.from('\r\n')]);
      assert.deepEqual(body, withEol);
    }),
  );
});

test('any split of the input into chunks gives the same stuffed and unstuffed bytes', () => {
  fc.assert(
    fc.property(
      messageArb,
      fc.array(fc.nat(300), { maxLength: 30 }),
      fc.array(fc.nat(300), { maxLength: 30 }),
      (msg, p1, p2) => {
        const wire = stuff(msg);
        assert.deepEqual(stuff(msg, p1), wire);
        const tail = Buffer.from('+OK next\r\n');
        const whole = unstuff(Buffer.concat([wire, tail]));
        const split = unstuff(Buffer.concat([wire, tail]), p2);
        assert.deepEqual(split.body, whole.body);
        assert.equal(split.done, true);
        assert.deepEqual(split.rest, tail);
      },
    ),
  );
});

test('no line of stuffed output is a lone dot except the terminator', () => {
  fc.assert(
    fc.property(messageArb, (msg) => {
      const lines = stuff(msg).toString('latin1').split('\r\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines.pop(), '.');
      assert.ok(!lines.includes('.'));
      for (const l of lines) if (l.startsWith('.')) assert.ok(l.startsWith('..'));
    }),
  );
});

test('lines starting with a dot are stuffed and unstuffed', () => {
  const wire = stuff(Buffer.from('.hidden\r\n..two\r\n.\r\nend\r\n'));
  assert.equal(wire.toString(), '..hidden\r\n...two\r\n..\r\nend\r\n.\r\n');
  assert.equal(unstuff(wire).body.toString(), '.hidden\r\n..two\r\n.\r\nend\r\n');
});

test('bare LF becomes CRLF and a message without a final line end gets one', () => {
  assert.equal(stuff(Buffer.from('a\nb')).toString(), 'a\r\nb\r\n.\r\n');
  assert.equal(stuff(Buffer.alloc(0)).toString(), '.\r\n');
});

test('the decoder tolerates a bare-LF terminator and keeps what follows', () => {
  const r = unstuff(Buffer.from('line\n.\n+OK'));
  assert.equal(r.body.toString(), 'line\n');
  assert.equal(r.rest.toString(), '+OK');
});

test('the decoder refuses a message over its size limit with ERR_POP3_MESSAGE_TOO_LARGE', () => {
  const dec = new DotDecoder(10);
  assert.throws(
    () => dec.push(Buffer.from('0123456789abc\r\n.\r\n')),
    (err) => isPopgateError(err, 'ERR_POP3_MESSAGE_TOO_LARGE'),
  );
});

test('random bytes never make the decoder throw anything but typed errors', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 400 }),
      fc.array(fc.nat(400), { maxLength: 10 }),
      (bytes, points) => {
        const dec = new DotDecoder(200);
        try {
          for (const chunk of cut(Buffer.from(bytes), points)) dec.push(chunk);
        } catch (err) {
          assert.ok(isPopgateError(err, 'ERR_POP3_MESSAGE_TOO_LARGE'), String(err));
        }
      },
    ),
  );
});

test('DotStuffer and DotUnstuffer streams round-trip and the unstuffer ends at the terminator', async () => {
  const msg = Buffer.from('From: a\n\n.dot\nbody');
  const stuffed: Buffer[] = [];
  await pipeline(Readable.from([msg.subarray(0, 5), msg.subarray(5)]), new DotStuffer(), async (src) => {
    for await (const c of src) stuffed.push(c as Buffer);
  });
  const un = new DotUnstuffer();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.concat([...stuffed, Buffer.from('+OK after\r\n')])]),
    un,
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  assert.equal(Buffer.concat(out).toString(), 'From: a\r\n\r\n.dot\r\nbody\r\n');
  assert.equal(un.trailing.toString(), '+OK after\r\n');
});

test('DotUnstuffer fails with ERR_POP3_CLOSED when input ends before the terminator', async () => {
  await assert.rejects(
    pipeline(Readable.from([Buffer.from('abc\r\n')]), new DotUnstuffer(), async (src) => {
      for await (const _ of src);
    }),
    (err) => isPopgateError(err, 'ERR_POP3_CLOSED'),
  );
});

test('a 300 MB synthetic stream goes through the unstuffer with flat memory', async () => {
  const line = Buffer.from(`.${'x'.repeat(1021)}\r\n`); // stuffed line of 1 KiB on the wire
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
  const total = 300 * 1024 * 1024;
  const chunks = Math.ceil(total / chunk.length);
  let sent = 0;
  const source = new Readable({
    read() {
      if (sent < chunks) {
        sent++;
        this.push(chunk);
      } else {
        this.push(Buffer.from('.\r\n'));
        this.push(null);
      }
    },
  });
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  let bytes = 0;
  await pipeline(
    source,
    new DotUnstuffer(),
    new Writable({
      write(c: Buffer, _e, cb) {
        bytes += c.length;
        if ((bytes & 0xfffff) < c.length) peak = Math.max(peak, process.memoryUsage().rss);
        cb();
      },
    }),
  );
  assert.equal(bytes, chunks * 64 * 1023);
  assert.ok(peak - before < 100 * 1024 * 1024, `rss grew by ${(peak - before) / 1e6} MB`);
});
