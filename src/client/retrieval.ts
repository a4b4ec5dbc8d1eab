/**
 * retrieveMany's windowed queueing (RFC 1939 §5 RETR, pipelined per RFC 2449 §6.6): RETRs are
 * queued a window ahead of the consumer as callback jobs, and the messages are yielded in order.
 * Apart from Pop3Client because it is the one call that schedules many commands itself rather
 * than awaiting one answer; the per-message work here is what the client's CPU figures measure.
 */
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { Pop3Error } from '../errors.ts';
import type { Pop3Limits } from '../protocol/limits.ts';
import type { Connection } from './connection.ts';
import type { BodyResult } from './job.ts';
import { checkNumber } from './message-number.ts';

export interface RetrievedMessage {
  readonly number: number;
  readonly stream: Readable;
}

/**
 * The generator behind Pop3Client.retrieveMany. Nothing runs before the first `next()`: then
 * `begin` checks the client's state and returns its connection, and the numbers are checked.
 */
export async function* retrieveInWindow(
  begin: () => Connection,
  numbers: Iterable<number>,
  sizes: ReadonlyMap<number, number>,
  limits: Pop3Limits,
  options: { signal?: AbortSignal | undefined },
): AsyncGenerator<RetrievedMessage> {
  const conn = begin();
  const list = [...numbers];
  for (const n of list) checkNumber(n);
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  setMaxListeners(0, signal);
  // RETRs are queued a window ahead of the consumer, not all at once: memory stays bounded by
  // the window however large the maildrop, and the connection's pipe never runs dry (its own
  // window is half of this one).
  const { maxPipelineDepth, maxPipelineBytes } = limits;
  const aheadCommands = 2 * maxPipelineDepth;
  const aheadBytes = 2 * maxPipelineBytes;
  const results: (BodyResult | Error | undefined)[] = new Array(list.length);
  let wake: (() => void) | undefined;
  let queued = 0;
  let queuedBytes = 0;
  const queueMore = (taken: number) => {
    while (
      queued < list.length &&
      queued - taken < aheadCommands &&
      (queuedBytes < aheadBytes || queued - taken < 2)
    ) {
      const index = queued++;
      const n = list[index]!;
      const size = sizes.get(n);
      queuedBytes += size ?? 0;
      conn.submit(
        {
          verb: 'RETR',
          line: Buffer.from(`RETR ${n}\r\n`, 'latin1'), // n is a checked safe integer
          logLine: `RETR ${n}`,
          kind: 'body',
          signal,
          expectedSize: size,
        },
        (err, value) => {
          results[index] = err ?? (value as BodyResult);
          const waiting = wake;
          wake = undefined;
          waiting?.();
        },
      );
    }
  };
  let i = 0;
  try {
    queueMore(0);
    for (; i < list.length; i++) {
      while (results[i] === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const result = results[i]!;
      results[i] = undefined;
      queuedBytes -= sizes.get(list[i]!) ?? 0;
      queueMore(i + 1);
      if (result instanceof Error) throw result;
      // An abort wins over answers that arrived before it (they are discarded below).
      if (options.signal?.aborted) {
        result.stream.destroy();
        throw new Pop3Error('ERR_POP3_ABORTED', 'RETR was aborted');
      }
      yield { number: list[i]!, stream: result.stream };
    }
  } finally {
    controller.abort();
    // Answered but never yielded (the loop was left, or failed): discard their bodies, or a
    // body over the stream's mark would pause the connection for good.
    for (let j = i + 1; j < queued; j++) {
      const result = results[j];
      if (result !== undefined && !(result instanceof Error)) result.stream.destroy();
    }
  }
}
