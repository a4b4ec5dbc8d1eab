import { transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** RSET (RFC 1939 §5): unmarks every message marked deleted. */
export const rset: CommandHandler = {
  verb: 'RSET',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'never',
  run(ctx) {
    const tx = transactionOf(ctx);
    tx.deleted.clear();
    ctx.ok(`Maildrop has ${tx.maildrop.messages.length} messages.`);
  },
};
