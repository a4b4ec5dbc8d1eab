import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSummaryReader } from '../helpers/run-summary.mjs';

const utf8 = (text: string) => Buffer.from(text, 'utf8');

test('the counts are read when a long failure report follows them in the same chunk', () => {
  const reader = createSummaryReader();
  const report = `\n✖ failing tests:\n\n${'  + actual - expected\n'.repeat(2000)}`;
  reader.feed(utf8(`ℹ tests 677\nℹ pass 676\nℹ fail 1\nℹ cancelled 0\nℹ skipped 0\n${report}`));
  assert.equal(reader.count('pass'), 676);
  assert.equal(reader.count('fail'), 1);
});

test('a count line split across chunks, even inside a multi-byte character, is read once whole', () => {
  const reader = createSummaryReader();
  const bytes = utf8('ℹ pass 12\nℹ fail 3\n');
  for (const byte of bytes) reader.feed(Uint8Array.of(byte));
  assert.equal(reader.count('pass'), 12);
  assert.equal(reader.count('fail'), 3);
});

test('a count quoted inside a test log line is not taken for the summary', () => {
  const reader = createSummaryReader();
  reader.feed(utf8('ℹ pass 5\n  # log: ℹ pass 999\nℹ pass 7'));
  assert.equal(reader.count('pass'), 7);
});
