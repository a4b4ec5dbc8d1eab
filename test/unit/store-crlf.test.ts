// Property tests for the line-ending conversion and the size accounting the store reports in LIST.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { CrlfEncoder, countBareLf, crlfLength, LfNormalizer, toCrlf, toLf } from '../../src/store/crlf.ts';

// Mail-like bytes: CR, LF and dots are common, so the generator favours them.
const mailBytes = fc
  .array(fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x41), fc.integer({ min: 0, max: 255 })), {
    maxLength: 400,
  })
  .map((a) => Buffer.from(a));

/** Splits a buffer at arbitrary points, as a socket or a file read would. */
function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(data.subarray(start, p));
    start = p;
  }
  out.push(data.subarray(start));
  return out;
}

async function encode(chunks: Buffer[], expected?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of Readable.from(chunks).pipe(new CrlfEncoder(expected))) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The reference: a regex over latin1 text, independent of the implementation. */
function referenceCrlf(data: Buffer): Buffer {
  return Buffer.from(data.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
}

test('toCrlf turns every bare LF into CRLF and changes nothing else', () => {
  fc.assert(
    fc.property(mailBytes, (data) => {
      assert.deepEqual(toCrlf(data), referenceCrlf(data));
    }),
  );
});

test('crlfLength is exactly the length of the converted bytes', () => {
  fc.assert(
    fc.property(mailBytes, (data) => {
      assert.equal(crlfLength(data), toCrlf(data).length);
    }),
  );
});

test('converted bytes contain no bare LF and converting twice changes nothing', () => {
  fc.assert(
    fc.property(mailBytes, (data) => {
      const once = toCrlf(data);
      assert.equal(countBareLf(once), 0);
      assert.deepEqual(toCrlf(once), once);
    }),
  );
});

test('the streaming encoder gives the same bytes however the input is chunked', async () => {
  await fc.assert(
    fc.asyncProperty(mailBytes, fc.array(fc.nat(), { maxLength: 8 }), async (data, cuts) => {
      const out = await encode(chunked(data, cuts), crlfLength(data));
      assert.deepEqual(out, referenceCrlf(data));
    }),
  );
});

test('the streaming encoder fails when the file is not the size LIST announced', async () => {
  await fc.assert(
    fc.asyncProperty(mailBytes, fc.integer({ min: 1, max: 50 }), async (data, delta) => {
      await assert.rejects(encode([data], crlfLength(data) + delta), { code: 'ERR_STORE_IO' });
      if (crlfLength(data) >= delta) {
        await assert.rejects(encode([data], crlfLength(data) - delta), { code: 'ERR_STORE_IO' });
      }
    }),
    { numRuns: 50 },
  );
});

test('delivery normalisation turns CRLF into LF, keeps lone CRs, and counts both sizes exactly', () => {
  fc.assert(
    fc.property(mailBytes, fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
      const normalizer = new LfNormalizer();
      const stored = Buffer.concat([...chunked(data, cuts).map((c) => normalizer.feed(c)), normalizer.end()]);
      assert.deepEqual(stored, Buffer.from(data.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
      assert.deepEqual(stored, toLf(data));
      assert.equal(normalizer.fileSize, stored.length);
      assert.equal(normalizer.crlfSize, crlfLength(stored));
    }),
  );
});

test('for mail without stray CRs, what is served equals the input with CRLF line endings', () => {
  const noStrayCr = mailBytes.map((b) =>
    Buffer.from(b.toString('latin1').replace(/\r(?!\n)/g, ''), 'latin1'),
  );
  fc.assert(
    fc.property(noStrayCr, (data) => {
      assert.deepEqual(toCrlf(toLf(data)), toCrlf(data));
    }),
  );
});
