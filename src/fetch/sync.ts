/**
 * One account's fetch run: recover unconfirmed deliveries, list, retrieve what is new
 * (pipelined), deliver in group-committed batches, record, optionally delete what is recorded,
 * QUIT. The ordering rules that make a crash at any point safe are in docs/fetch.md ("Crash
 * analysis"); in short: stage durably -> announce (journal fsync) -> publish (rename/append,
 * fsync) -> record (journal fsync) -> DELE only recorded -> QUIT commits.
 */
import { FetchError, type PopgateError } from '../errors.ts';
import type { MailboxSession, ServerMessage } from './session.ts';
import type { CommandSink } from './sinks/command.ts';
import type { Intent, Sink, Staged } from './sinks/types.ts';
import type { UidlState } from './state.ts';

/**
 * Where a run stands. Every byte count is in the server's octets (LIST sizes, CRLF), so counts
 * and totals compare; the report's `bytes` is what was written locally (LF), which is smaller.
 */
export interface SyncProgress {
  readonly account: string;
  readonly phase: 'listing' | 'fetching' | 'deleting' | 'done';
  /** Messages delivered (or failed) so far: final outcomes. */
  readonly messagesDone: number;
  readonly messagesTotal: number;
  /** Octets of the messages retrieved and staged so far. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Messages retrieved and staged at the destination (written, not yet published). */
  readonly messagesReceived: number;
  /** Octets of the messages delivered (or failed) so far. */
  readonly bytesDelivered: number;
  /**
   * The step that moves one message at a time, for a display: `retrieval` when messages are
   * published in groups (Maildir, mbox), `delivery` when a command takes them one by one.
   */
  readonly pace: 'retrieval' | 'delivery';
  /** True on the last event when a signal stopped the run with messages left. */
  readonly stopped?: boolean;
}

export interface SyncOptions {
  readonly account: string;
  readonly state: UidlState;
  readonly sink: Sink;
  /** Delete on the server every message that is delivered and recorded. */
  readonly delete?: boolean;
  /** Delete recorded messages this many days after they were first fetched. */
  readonly deleteAfterDays?: number;
  /** Skip (and report) messages larger than this (octets, from LIST). */
  readonly maxSize?: number;
  /** Fetch at most this many messages in this run. */
  readonly limit?: number;
  /** Group commit: publish after this many messages or bytes (defaults 256 and 8 MiB). */
  readonly batchMessages?: number;
  readonly batchBytes?: number;
  /** Stop after the message in flight, then record, delete and QUIT cleanly. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: SyncProgress) => void;
  readonly now?: () => number;
}

export interface SyncReport {
  readonly account: string;
  /** Messages on the server. */
  readonly onServer: number;
  /** Messages that were new at the start of the run (after skips and limit). */
  readonly wanted: number;
  readonly fetched: number;
  /** Octets written locally for the fetched messages (LF line ends: smaller than on the server). */
  readonly bytes: number;
  /** The same messages in the server's octets (LIST sizes), the unit of the progress totals. */
  readonly serverBytes: number;
  readonly skippedTooLarge: readonly { uidl: string; size: number }[];
  readonly failed: readonly { uidl: string; error: PopgateError }[];
  readonly deleted: number;
  /** Deliveries of an earlier, interrupted run found complete and recorded now. */
  readonly recovered: number;
  /** Deliveries of an earlier run that did not complete, fetched again. */
  readonly redone: number;
  readonly stopped: boolean;
  /** Messages left for a later run because of --limit. */
  readonly deferred: number;
}

interface PendingKey {
  readonly k: unknown;
  readonly s?: number;
  readonly m?: string;
}

/**
 * Settles deliveries a previous run announced but did not confirm. Run before connecting: it
 * needs only the state and the destination.
 */
export async function recoverIntents(
  state: UidlState,
  sink: Sink,
  now: number,
): Promise<{ recovered: number; redone: number }> {
  let recovered = 0;
  let redone = 0;
  for (const intent of state.pendingIntents()) {
    const key = (intent.key ?? {}) as PendingKey;
    const result = await sink.recover(key.k);
    if (result === 'delivered') {
      const entry = { uidl: intent.uidl, firstSeen: now, size: key.s ?? 0 };
      await state.recordDelivered([key.m === undefined ? entry : { ...entry, messageId: key.m }]);
      recovered++;
    } else {
      if (result === 'unknown' && sink.kind === 'command') (sink as CommandSink).redelivery.add(intent.uidl);
      await state.abandonIntents([intent.uidl]);
      redone++;
    }
  }
  return { recovered, redone };
}

/** Runs one fetch over an authenticated session. Throws on fatal errors after committing what it safely can. */
export async function syncAccount(session: MailboxSession, options: SyncOptions): Promise<SyncReport> {
  const { account, state, sink } = options;
  const now = options.now ?? Date.now;
  // A delivery command runs per message anyway: hand each over as soon as it is staged.
  const batchMessages = sink.kind === 'command' ? 1 : (options.batchMessages ?? 256);
  const batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
  const { recovered, redone } = await recoverIntents(state, sink, now());

  const pace = sink.kind === 'command' ? 'delivery' : 'retrieval';
  let messagesReceived = 0;
  let bytesDelivered = 0;
  const report = (
    progress: Pick<SyncProgress, 'phase' | 'messagesDone' | 'messagesTotal' | 'bytesDone' | 'bytesTotal'> & {
      stopped?: boolean;
    },
  ) => options.onProgress?.({ account, ...progress, messagesReceived, bytesDelivered, pace });
  report({ phase: 'listing', messagesDone: 0, messagesTotal: 0, bytesDone: 0, bytesTotal: 0 });
  const listing = await session.listing();
  const seen = new Set<string>();
  const fresh: ServerMessage[] = [];
  const skippedTooLarge: { uidl: string; size: number }[] = [];
  for (const message of listing) {
    if (state.has(message.uidl) || seen.has(message.uidl)) continue;
    seen.add(message.uidl);
    if (options.maxSize !== undefined && message.size > options.maxSize) {
      skippedTooLarge.push({ uidl: message.uidl, size: message.size });
      continue;
    }
    fresh.push(message);
  }
  const wanted = options.limit === undefined ? fresh : fresh.slice(0, options.limit);
  const deferred = fresh.length - wanted.length;
  const bytesTotal = wanted.reduce((sum, m) => sum + m.size, 0);
  const byNumber = new Map(wanted.map((m) => [m.number, m]));

  let fetched = 0;
  let bytes = 0;
  let serverBytes = 0;
  let bytesDone = 0;
  let messagesDone = 0;
  const failed: { uidl: string; error: PopgateError }[] = [];
  /** A destination or state failure: later batches are discarded. */
  let fatal: unknown;
  let retrievalError: unknown;
  let stopped = false;

  // Group commit: batches publish one after another while retrieval continues.
  let chain: Promise<void> = Promise.resolve();
  let batch: Staged[] = [];
  let batchSize = 0;
  const commit = (items: Staged[]) => {
    chain = chain.then(async () => {
      if (sink.kind !== 'command') return publishGroup(items);
      // A delivery command takes messages one at a time: on a stop signal, the one running
      // finishes and the staged rest is discarded (fetched again next run).
      for (const item of items) {
        if (options.signal?.aborted) await sink.discard(item);
        else await publishGroup([item]);
      }
    });
  };
  const publishGroup = async (items: Staged[]) => {
    if (fatal !== undefined) {
      for (const s of items) await sink.discard(s);
      return;
    }
    try {
      const firstSeen = now();
      const announce = (intents: readonly Intent[]) =>
        state.recordIntents(
          intents.map((intent) => {
            const s = items.find((item) => item.info.uidl === intent.uidl);
            const key: PendingKey = {
              k: intent.key,
              ...(s ? { s: s.info.size } : {}),
              ...(s?.messageId ? { m: s.messageId } : {}),
            };
            return { uidl: intent.uidl, key };
          }),
        );
      const outcomes = await sink.publish(items, announce);
      const ok = items.filter((_, i) => outcomes[i]?.ok);
      await state.recordDelivered(
        ok.map((s) => {
          const entry = { uidl: s.info.uidl, firstSeen, size: s.info.size };
          return s.messageId === undefined ? entry : { ...entry, messageId: s.messageId };
        }),
      );
      fetched += ok.length;
      bytes += ok.reduce((sum, s) => sum + s.bytes, 0);
      serverBytes += ok.reduce((sum, s) => sum + s.info.size, 0);
      const bad: string[] = [];
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.ok) continue;
        const uidl = items[i]!.info.uidl;
        bad.push(uidl);
        failed.push({ uidl, error: outcome.error });
        // A broken destination (disk full, permissions) stops the run; a failing delivery
        // command is per message.
        if (sink.kind !== 'command' && fatal === undefined) fatal = outcome.error;
      }
      if (bad.length > 0) await state.abandonIntents(bad);
      messagesDone += items.length;
      bytesDelivered += items.reduce((sum, item) => sum + item.info.size, 0);
      report({ phase: 'fetching', messagesDone, messagesTotal: wanted.length, bytesDone, bytesTotal });
    } catch (error) {
      if (fatal === undefined) fatal = error;
      for (const s of items) await sink.discard(s).catch(() => undefined);
    }
  };
  const flush = () => {
    if (batch.length === 0) return;
    commit(batch);
    batch = [];
    batchSize = 0;
  };

  report({ phase: 'fetching', messagesDone, messagesTotal: wanted.length, bytesDone, bytesTotal });
  try {
    if (wanted.length > 0) {
      for await (const retrieved of session.retrieveAll(wanted.map((m) => m.number))) {
        const message = byNumber.get(retrieved.number);
        if (!message)
          throw new FetchError(
            'ERR_FETCH_STATE',
            `the session returned message ${retrieved.number}, which was not requested`,
          );
        // A staging failure (disk full, unwritable destination, connection dropped mid-message)
        // stops retrieval; what is staged so far is still committed below.
        const staged = await sink.stage(retrieved.stream, {
          uidl: message.uidl,
          size: message.size,
          account,
        });
        batch.push(staged);
        batchSize += staged.bytes;
        bytesDone += message.size;
        messagesReceived++;
        report({ phase: 'fetching', messagesDone, messagesTotal: wanted.length, bytesDone, bytesTotal });
        if (batch.length >= batchMessages || batchSize >= batchBytes) flush();
        if (fatal !== undefined) break;
        if (options.signal?.aborted) {
          stopped = true;
          break;
        }
      }
    }
  } catch (error) {
    retrievalError = error;
  }
  // Messages staged before a retrieval error are complete: they are still committed.
  flush();
  await chain;
  fatal ??= retrievalError;

  if (fatal !== undefined) {
    // Nothing is deleted after a failure: drop the connection without QUIT (the server keeps
    // every message; the next run deletes what is recorded).
    session.destroy();
    throw fatal;
  }

  // Stopped by a signal with work left (the retrieval loop, or staged messages discarded).
  if (options.signal?.aborted && fetched + failed.length < wanted.length) stopped = true;
  const deleteAfter =
    options.deleteAfterDays === undefined ? undefined : now() - options.deleteAfterDays * 86_400_000;
  const toDelete = listing.filter((m) => {
    const entry = state.get(m.uidl);
    if (!entry) return false;
    if (options.delete) return true;
    return deleteAfter !== undefined && entry.firstSeen <= deleteAfter;
  });
  if (toDelete.length > 0) {
    report({ phase: 'deleting', messagesDone, messagesTotal: wanted.length, bytesDone, bytesTotal });
    await session.delete(toDelete.map((m) => m.number));
  }
  try {
    await session.quit();
  } catch (error) {
    // Without deletions a failed QUIT changes nothing: every message is delivered and recorded.
    // With deletions, the server may not have removed them; the next run deletes them again.
    session.destroy();
    if (toDelete.length > 0) throw error;
  }
  if (toDelete.length > 0) await state.recordExpunged(toDelete.map((m) => m.uidl));
  if (state.recordCount > 2 * state.size + 1000) await state.compact();
  report({ phase: 'done', messagesDone, messagesTotal: wanted.length, bytesDone, bytesTotal, stopped });
  return {
    account,
    onServer: listing.length,
    wanted: wanted.length,
    fetched,
    bytes,
    serverBytes,
    skippedTooLarge,
    failed,
    deleted: toDelete.length,
    recovered,
    redone,
    stopped,
    deferred,
  };
}
