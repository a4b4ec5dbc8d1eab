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

/** The transaction, which the command resolver guarantees for TRANSACTION-only handlers. */
export function transactionOf(ctx: CommandContext): Transaction {
  const tx = ctx.transaction;
  if (tx === undefined) throw new Error('TRANSACTION handler ran without a transaction');
  return tx;
}

/**
 * The shared shape of LIST and UIDL (RFC 1939 §5, §7): with an argument, one `+OK n value` line;
 * without, a multi-line listing of every message not marked deleted. `header` gets the count
 * and total size of the listed messages for the `+OK` line.
 */
export function answerListing(
  ctx: CommandContext,
  arg: string | undefined,
  value: (message: Transaction['maildrop']['messages'][number]) => string | number,
  header: (count: number, octets: number) => string,
): void {
  const tx = transactionOf(ctx);
  if (arg !== undefined) {
    const index = messageIndex(ctx, tx, arg);
    if (index !== undefined) ctx.ok(`${index + 1} ${value(tx.maildrop.messages[index]!)}`);
    return;
  }
  const lines: string[] = [];
  let octets = 0;
  tx.maildrop.messages.forEach((message, i) => {
    if (tx.deleted.has(i)) return;
    lines.push(`${i + 1} ${value(message)}`);
    octets += message.size;
  });
  ctx.multiline(header(lines.length, octets), lines);
}
