// What `popgate fetch` shows on a terminal (issue 12): the count moves with the step that handles
// one message at a time, the bytes belong to the same messages, nothing to do shows no bar, a run
// stopped by a signal says so, and the line fits the terminal's width.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { CliContext } from '../../src/cli/context.ts';
import { barFormat, createReporter, paceOf, summaryLine } from '../../src/cli/progress.ts';
import type { RunAccountReport } from '../../src/fetch/run-account.ts';
import type { SyncProgress } from '../../src/fetch/sync.ts';

function terminal(columns: number) {
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns });
  let text = '';
  stderr.on('data', (c: Buffer) => (text += c.toString()));
  const ctx: CliContext = {
    env: {},
    paths: { configFile: '/nonexistent', dataDir: '/nonexistent', stateDir: '/nonexistent' },
    stdout: new PassThrough(),
    stderr,
    stdin: new PassThrough(),
    exitCode: 0,
  };
  return { ctx, text: () => text };
}

/** The lines a terminal would show: cursor movements removed, carriage returns honoured. */
function screenLines(raw: string): string[] {
  return raw
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n')
    .split(/[\r\n]/)
    .map((l) => l.trimEnd())
    .filter(Boolean);
}

function report(partial: Partial<RunAccountReport>): RunAccountReport {
  return {
    account: 'work',
    onServer: 0,
    wanted: 0,
    fetched: 0,
    bytes: 0,
    serverBytes: 0,
    skippedTooLarge: [],
    failed: [],
    deleted: 0,
    recovered: 0,
    redone: 0,
    deferred: 0,
    stopped: false,
    elapsedMs: 1200,
    ...partial,
  } as RunAccountReport;
}

const event = (p: Partial<SyncProgress>): SyncProgress => ({
  account: 'work',
  phase: 'fetching',
  messagesDone: 0,
  messagesTotal: 3000,
  bytesDone: 0,
  bytesTotal: 19_700_000,
  messagesReceived: 0,
  bytesDelivered: 0,
  pace: 'retrieval',
  ...p,
});

test('the count and the bytes come from one step: retrieval for files, delivery for a command', () => {
  // Maildir publishes in groups of 256: the received count moves one by one meanwhile.
  assert.deepEqual(paceOf(event({ messagesReceived: 162, bytesDone: 1_000_000, messagesDone: 0 })), {
    messages: 162,
    bytes: 1_000_000,
  });
  // A delivery command is slower than retrieval: count and bytes are those delivered.
  assert.deepEqual(
    paceOf(
      event({
        pace: 'delivery',
        messagesReceived: 3000,
        bytesDone: 19_700_000,
        messagesDone: 162,
        bytesDelivered: 1_050_000,
      }),
    ),
    { messages: 162, bytes: 1_050_000 },
  );
});

test('with no new mail there is no bar, only the summary', () => {
  const { ctx, text } = terminal(100);
  const reporter = createReporter(ctx, 'tty');
  reporter.progress(event({ phase: 'listing', messagesTotal: 0, bytesTotal: 0 }));
  reporter.progress(event({ messagesTotal: 0, bytesTotal: 0 }));
  reporter.progress(event({ phase: 'done', messagesTotal: 0, bytesTotal: 0 }));
  reporter.done(report({ onServer: 12 }));
  reporter.close();
  assert.doesNotMatch(text(), /msgs|0 B of 0 B|1\/1/);
  assert.match(text(), /work: no new mail \(12 on the server\)/);
});

test('a run stopped by a signal ends with "stopped", not "done"', () => {
  const { ctx, text } = terminal(120);
  const reporter = createReporter(ctx, 'tty');
  reporter.progress(event({ messagesReceived: 10, bytesDone: 65_000 }));
  reporter.progress(
    event({ phase: 'done', messagesDone: 10, messagesReceived: 10, bytesDelivered: 65_000, stopped: true }),
  );
  reporter.close();
  const lines = screenLines(text());
  assert.match(lines.at(-1) ?? '', /10\/3000 msgs .* stopped$/);
  assert.doesNotMatch(text(), /ETA done/);
});

test('the bar line fits the terminal at 60, 80 and 120 columns, rate and ETA included', () => {
  for (const columns of [60, 80, 120]) {
    const { ctx, text } = terminal(columns);
    const reporter = createReporter(ctx, 'tty');
    reporter.progress(event({ account: 'work-account', messagesReceived: 1500, bytesDone: 9_850_000 }));
    reporter.close();
    const line = screenLines(text()).find((l) => l.includes('1500/3000')) ?? '';
    assert.ok(line.length <= columns, `${columns} columns: ${JSON.stringify(line)} (${line.length})`);
    assert.match(line, /\/s /, `${columns} columns shows the rate: ${line}`);
    assert.match(line, /ETA \d/, `${columns} columns shows the ETA: ${line}`);
  }
  assert.equal(barFormat(60).barsize, 0);
});

test('the summary counts bytes in the server octets the bar counted', () => {
  const line = summaryLine(
    report({ wanted: 3007, fetched: 3007, bytes: 19_400_000, serverBytes: 19_700_000 }),
  );
  assert.match(line, /fetched 3007 messages \(19\.7 MB\)/);
});
