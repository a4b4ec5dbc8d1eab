import { messageIndex, transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** UIDL [msg] (RFC 1939 §7): the store's stable unique ids. */
export const uidl: CommandHandler = {
  verb: 'UIDL',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 1,
  multiline: 'without-argument',
  run(ctx, args) {
    const tx = transactionOf(ctx);
    const arg = args[0];
    if (arg !== undefined) {
      const index = messageIndex(ctx, tx, arg);
      if (index !== undefined) ctx.ok(`${index + 1} ${tx.maildrop.messages[index]!.uid}`);
      return;
    }
    const lines: string[] = [];
    tx.maildrop.messages.forEach((m, i) => {
      if (!tx.deleted.has(i)) lines.push(`${i + 1} ${m.uid}`);
    });
    ctx.multiline('', lines);
  },
};
