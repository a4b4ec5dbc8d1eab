import { transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** STAT (RFC 1939 §5): count and size of the messages not marked deleted. */
export const stat: CommandHandler = {
  verb: 'STAT',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'never',
  run(ctx) {
    const tx = transactionOf(ctx);
    let count = 0;
    let size = 0;
    tx.maildrop.messages.forEach((m, i) => {
      if (tx.deleted.has(i)) return;
      count += 1;
      size += m.size;
    });
    ctx.ok(`${count} ${size}`);
  },
};
