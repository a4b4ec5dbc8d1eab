import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPopgateError } from '../../src/errors.ts';
import { LineReader, splitLines } from '../../src/protocol/index.ts';

/** Splits `data` at the given cut points (sorted, deduplicated, clamped). */
function cut(data: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => Math.min(Math.max(p, 0), data.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of sorted) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

const lineArb = fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, ''));

test('any split of the input into chunks gives the same lines', () => {
  fc.assert(
    fc.property(
      fc.array(lineArb, { maxLength: 30 }),
      fc.array(fc.nat(2000), { maxLength: 20 }),
      fc.boolean(),
      (lines, points, bareLf) => {
        const data = Buffer.from(lines.map((l) => l + (bareLf ? '\n' : '\r\n')).join(''), 'latin1');
        const whole = splitLines([data], { maxLineLength: 100 });
        const split = splitLines(cut(data, points), { maxLineLength: 100 });
        assert.deepEqual(
          split.lines.map((l) => l.toString('latin1')),
          lines,
        );
        assert.deepEqual(whole.lines, split.lines);
        assert.equal(split.rest.length, 0);
      },
    ),
  );
});

test('a bare LF ends a line like CRLF does', () => {
  const { lines } = splitLines([Buffer.from('+OK a\n+OK b\r\n')], { maxLineLength: 64 });
  assert.deepEqual(
    lines.map((l) => l.toString()),
    ['+OK a', '+OK b'],
  );
});

test('an incomplete last line stays buffered and is returned by takeBuffered', () => {
  const reader = new LineReader({ maxLineLength: 64 });
  reader.push(Buffer.from('+OK\r\npartial'));
  assert.equal(reader.readLine()?.toString(), '+OK');
  assert.equal(reader.readLine(), undefined);
  assert.equal(reader.takeBuffered().toString(), 'partial');
  assert.equal(reader.buffered, 0);
});

test('a line over the limit is a terminal ERR_POP3_LINE_TOO_LONG, even before its LF arrives', () => {
  const reader = new LineReader({ maxLineLength: 64 });
  reader.push(Buffer.alloc(65, 0x61));
  assert.throws(
    () => reader.readLine(),
    (err) => isPopgateError(err, 'ERR_POP3_LINE_TOO_LONG'),
  );
  assert.throws(
    () => reader.push(Buffer.from('\r\n')),
    (err) => isPopgateError(err, 'ERR_POP3_LINE_TOO_LONG'),
  );
  assert.throws(
    () => reader.readLine(),
    (err) => isPopgateError(err, 'ERR_POP3_LINE_TOO_LONG'),
  );
});

test('a line exactly at the limit (CRLF included) is accepted', () => {
  const reader = new LineReader({ maxLineLength: 64 });
  reader.push(Buffer.from(`${'a'.repeat(62)}\r\n`));
  assert.equal(reader.readLine()?.length, 62);
});

test('random bytes never throw anything but the typed line error', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 500 }),
      fc.array(fc.nat(500), { maxLength: 10 }),
      (bytes, points) => {
        const reader = new LineReader({ maxLineLength: 64 });
        try {
          for (const chunk of cut(Buffer.from(bytes), points)) {
            reader.push(chunk);
            while (reader.readLine() !== undefined);
          }
        } catch (err) {
          assert.ok(isPopgateError(err, 'ERR_POP3_LINE_TOO_LONG'), String(err));
        }
      },
    ),
  );
});
