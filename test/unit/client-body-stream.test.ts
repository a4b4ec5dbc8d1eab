import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { BodyStream } from '../../src/client/body-stream.ts';

function stream(onDestroy: (err: Error | null) => void = () => {}) {
  return new BodyStream(
    {
      read: () => {},
      destroy: (err, cb) => {
        onDestroy(err);
        cb(err);
      },
    },
    16,
  );
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('async iteration yields every pushed byte in order, pushed before and while iterating', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.boolean()), { maxLength: 12 }),
      fc.nat({ max: 12 }),
      async (parts, before) => {
        const s = stream();
        const expected = Buffer.concat(parts.map(([p]) => p));
        const producer = (async () => {
          for (let i = 0; i < parts.length; i++) {
            const [p, wait] = parts[i]!;
            if (i >= before && wait) await tick();
            s.push(Buffer.from(p));
          }
          if (parts.length > before) await tick();
          s.push(null);
        })();
        const got: Buffer[] = [];
        for await (const chunk of s) got.push(chunk);
        await producer;
        assert.deepEqual(Buffer.concat(got), expected);
      },
    ),
    { numRuns: 200 },
  );
});

test('an error that destroys the stream while the consumer waits is thrown by the loop', async () => {
  const s = stream();
  s.push(Buffer.from('a'));
  setImmediate(() => s.destroy(new Error('boom')));
  const got: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of s) got.push(chunk.toString());
    })(),
    /boom/,
  );
  assert.deepEqual(got, ['a']);
});

test('a destroy without error before the end is a premature close, as with Node streams', async () => {
  const s = stream();
  setImmediate(() => s.destroy());
  await assert.rejects(
    (async () => {
      for await (const _ of s);
    })(),
    (e: NodeJS.ErrnoException) => e.code === 'ERR_STREAM_PREMATURE_CLOSE',
  );
});

test('leaving the loop early destroys the stream (the connection discards the rest)', async () => {
  let destroyed = 0;
  const s = stream(() => destroyed++);
  s.push(Buffer.from('first'));
  for await (const _ of s) break;
  assert.equal(destroyed, 1);
  assert.equal(s.destroyed, true);
});

test('a completed loop does not report the stream as abandoned, and it still ends and closes', async () => {
  let destroyErr: Error | null | undefined;
  const s = stream((err) => {
    destroyErr = err;
  });
  s.push(Buffer.from('x'));
  s.push(null);
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c);
  await tick();
  assert.equal(Buffer.concat(chunks).toString(), 'x');
  assert.equal(s.readableEnded, true);
  assert.equal(destroyErr, null); // autoDestroy after 'end', without an error
});

test('pipe and pipeline still work (only async iteration is overridden)', async () => {
  const s = stream();
  const out: Buffer[] = [];
  setImmediate(() => {
    s.push(Buffer.from('ab'));
    s.push(Buffer.from('cd'));
    s.push(null);
  });
  await pipeline(
    s,
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  assert.equal(Buffer.concat(out).toString(), 'abcd');
});

test('queued octets count in readableLength, and push asks the connection to pause at the mark', () => {
  let reads = 0;
  const s = new BodyStream(
    {
      read: () => {
        reads++;
      },
      destroy: (err, cb) => cb(err),
    },
    16,
  );
  assert.equal(s.push(Buffer.alloc(10)), true);
  assert.equal(s.readableLength, 10);
  assert.equal(s.push(Buffer.alloc(10)), false, 'over the 16-octet mark: pause');
  assert.equal(s.readableLength, 20);
  const chunk = s.read() as Buffer; // a Readable consumer pulls the queue in
  assert.equal(chunk.length, 20);
  assert.equal(s.readableLength, 0);
  assert.ok(reads > 0, 'the connection was told to resume');
});
