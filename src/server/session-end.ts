/**
 * How a session ends: why ({@link EndReason}), which endings still deliver their last answer,
 * what a timer that ends a session answers, and the release every session gets exactly once
 * (maildrop unlocked without committing, per-user slot returned, the logout audit event).
 * Apart from session.ts so the orchestrator reads as the command loop.
 */
import { isPopgateError } from '../errors.ts';
import type { SessionStats, Transaction } from './context.ts';
import type { ListenerKind } from './options.ts';
import type { ServerShared } from './shared.ts';

/** Why a session ended (the logout audit event's `how`). */
export type EndReason = 'quit' | 'dropped' | 'idle' | 'expired' | 'shutdown' | 'limit' | 'error';

/** A reason a timer ends the session for. */
export type TimeoutReason = Extract<EndReason, 'idle' | 'expired' | 'limit'>;

const GRACEFUL_ENDS: ReadonlySet<EndReason> = new Set(['quit', 'idle', 'expired', 'shutdown', 'limit']);

/** Whether the last answer must still reach the peer (half-close) or the socket is destroyed. */
export function isGraceful(reason: EndReason): boolean {
  return GRACEFUL_ENDS.has(reason);
}

/** The `-ERR` a timer's ending answers with. */
export function timeoutAnswer(reason: TimeoutReason): { text: string; code?: string } {
  if (reason === 'idle') return { text: 'Disconnected for inactivity.' };
  if (reason === 'expired')
    return { text: 'The access token expired; log in again with a fresh token.', code: 'AUTH' };
  return { text: 'Session time limit reached; reconnect.', code: 'SYS/TEMP' };
}

/** What the logout audit event and the release need to know of an ended session. */
export interface EndedSession {
  readonly id: string;
  readonly remoteAddress: string;
  readonly listener: ListenerKind;
  /** The transaction still held (a dropped or aborted session), or undefined. */
  readonly transaction: Transaction | undefined;
  /** The user holding a per-user slot (logged in), or undefined. */
  readonly user: string | undefined;
  readonly how: EndReason;
  readonly stats: SessionStats;
  readonly deleted: number;
  readonly started: number;
}

/** Releases what the session held and emits the logout audit event; never throws. */
export async function releaseSession(shared: ServerShared, ended: EndedSession): Promise<void> {
  const tx = ended.transaction;
  if (tx !== undefined) {
    tx.readAhead.clear();
    // A dropped or aborted session deletes nothing: release without committing.
    try {
      await tx.maildrop.release();
    } catch (error) {
      shared.logger.error(
        { session: ended.id, code: isPopgateError(error) ? error.code : undefined },
        'maildrop release failed',
      );
    }
  }
  if (ended.user !== undefined) shared.perUser.release(ended.user);
  shared.metrics?.sessions.dec({ listener: ended.listener });
  const { stats } = ended;
  shared.audit?.emit({
    event: 'logout',
    session: ended.id,
    remoteAddress: ended.remoteAddress,
    user: ended.user,
    how: ended.how,
    commands: stats.commands,
    retr: stats.retr,
    top: stats.top,
    dele: stats.dele,
    bytesOut: stats.bytesOut,
    deleted: ended.deleted,
    durationMs: shared.now() - ended.started,
  });
}
