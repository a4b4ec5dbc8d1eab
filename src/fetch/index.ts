/**
 * popgate's fetcher as a library: account sync, durable UIDL state, account lock and the
 * destinations (Maildir, mbox, delivery command). The `popgate fetch` command wires these to
 * the POP3 client and the token manager.
 */
export { type AccountLock, type LockOptions, lockAccount } from './lock.ts';
export type { MailboxSession, RetrievedMessage, ServerMessage } from './session.ts';
export { CommandSink, type CommandSinkOptions } from './sinks/command.ts';
export { MaildirSink, type MaildirSinkOptions } from './sinks/maildir.ts';
export { MboxSink, type MboxSinkOptions } from './sinks/mbox.ts';
export type { Intent, MessageInfo, PublishOutcome, RecoveryResult, Sink, Staged } from './sinks/types.ts';
export { type DeliveredEntry, type PendingIntent, UidlState } from './state.ts';
export { recoverIntents, type SyncOptions, type SyncProgress, type SyncReport, syncAccount } from './sync.ts';
