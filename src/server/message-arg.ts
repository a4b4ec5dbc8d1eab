/**
 * Parses a message-number argument against the session's fixed numbering (RFC 1939 §5:
 * numbers are 1-based, fixed for the session; a deleted message keeps its number but may not
 * be referred to). Answers the `-ERR` itself and returns undefined when the argument is bad.
 */
import type { CommandContext, Transaction } from './context.ts';

const DECIMAL = /^[0-9]{1,10}$/;

/** The 0-based index for `arg`, or undefined after answering `-ERR`. */
export function messageIndex(ctx: CommandContext, tx: Transaction, arg: string): number | undefined {
  if (!DECIMAL.test(arg)) {
    ctx.err('Invalid message number.');
    return undefined;
  }
  const n = Number(arg);
  if (n < 1 || n > tx.maildrop.messages.length) {
    ctx.err('There is no such message.');
    return undefined;
  }
  const index = n - 1;
  if (tx.deleted.has(index)) {
    ctx.err('Message is deleted.');
    return undefined;
  }
  return index;
}

/** The transaction, which the dispatcher guarantees for TRANSACTION-only handlers. */
export function transactionOf(ctx: CommandContext): Transaction {
  const tx = ctx.transaction;
  if (tx === undefined) throw new Error('TRANSACTION handler ran without a transaction');
  return tx;
}
