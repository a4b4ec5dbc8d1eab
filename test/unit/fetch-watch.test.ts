// The `popgate fetch --watch` schedule with an injected clock: jitter bounds, the LOGIN-DELAY
// floor (jitter included), stopping on a configuration error and on a signal. The real 10 s
// interval is observed once in test/interop/fetch-cli-watch.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { nextPollDelayMs, type RoundResult, watchLoop } from '../../src/cli/commands/fetch.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';

test('the next poll is the interval with at most ±10 % jitter', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 10, max: 86_400 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (s, r) => {
        const ms = nextPollDelayMs(s * 1000, 0, () => r);
        assert.ok(ms >= Math.floor(s * 900) && ms <= Math.ceil(s * 1100), `${ms} for ${s}s`);
      },
    ),
  );
  assert.equal(
    nextPollDelayMs(100_000, 0, () => 0),
    90_000,
  );
  assert.equal(
    nextPollDelayMs(100_000, 0, () => 0.5),
    100_000,
  );
});

test('the next poll is never sooner than the LOGIN-DELAY the server announced, jitter included', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 10, max: 3600 }),
      fc.integer({ min: 0, max: 7200 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (every, delay, r) => {
        const ms = nextPollDelayMs(every * 1000, delay, () => r);
        assert.ok(ms >= delay * 1000, `${ms} ms < LOGIN-DELAY ${delay} s`);
      },
    ),
  );
  // The smallest jitter on a 900 s LOGIN-DELAY used to give 810 s.
  assert.equal(
    nextPollDelayMs(10_000, 900, () => 0),
    900_000,
  );
});

function rounds(codes: number[], loginDelaySeconds = 0): () => Promise<RoundResult> {
  return async () => ({ exitCode: codes.shift() ?? EXIT.OK, loginDelaySeconds });
}

test('watch: rounds repeat with the scheduled waits until a signal, which ends the wait at once', async () => {
  const controller = new AbortController();
  const waits: number[] = [];
  const notes: string[] = [];
  let count = 0;
  const code = await watchLoop({
    watch: true,
    everyMs: 10_000,
    signal: controller.signal,
    round: async () => {
      count++;
      return { exitCode: count === 2 ? EXIT.TEMPFAIL : EXIT.OK, loginDelaySeconds: count === 2 ? 600 : 0 };
    },
    note: (text) => notes.push(text),
    random: () => 0.5,
    sleep: (ms, signal) => {
      waits.push(ms);
      if (waits.length < 3) return Promise.resolve();
      // The third wait is cut short by a signal.
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason));
        controller.abort();
      });
    },
  });
  assert.equal(count, 3);
  assert.deepEqual(waits, [10_000, 600_000, 10_000]);
  assert.deepEqual(notes, [
    'popgate: next fetch in 10 s (Ctrl-C to stop)',
    'popgate: next fetch in 600 s (Ctrl-C to stop)',
    'popgate: next fetch in 10 s (Ctrl-C to stop)',
  ]);
  assert.equal(code, EXIT.OK, 'the last round decides the exit code');
});

test('watch: a configuration error stops the loop (the next round would only repeat it)', async () => {
  const waits: number[] = [];
  const code = await watchLoop({
    watch: true,
    everyMs: 10_000,
    signal: new AbortController().signal,
    round: rounds([EXIT.OK, EXIT.TEMPFAIL, EXIT.CONFIG, EXIT.OK]),
    note: () => undefined,
    random: () => 0.5,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
  assert.equal(code, EXIT.CONFIG);
  assert.equal(waits.length, 2, 'a temporary failure waits and tries again; a config error does not');
});

test('without --watch there is one round and no wait', async () => {
  let slept = false;
  const code = await watchLoop({
    watch: false,
    everyMs: 0,
    signal: new AbortController().signal,
    round: rounds([EXIT.TEMPFAIL]),
    note: () => undefined,
    random: Math.random,
    sleep: async () => {
      slept = true;
    },
  });
  assert.equal(code, EXIT.TEMPFAIL);
  assert.equal(slept, false);
});
