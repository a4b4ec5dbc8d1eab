import { messageIndex, transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** RETR msg (RFC 1939 §5): the message, dot-stuffed, streamed with backpressure. */
export const retr: CommandHandler = {
  verb: 'RETR',
  states: ['TRANSACTION'],
  minArgs: 1,
  maxArgs: 1,
  multiline: 'always',
  async run(ctx, args) {
    const tx = transactionOf(ctx);
    const index = messageIndex(ctx, tx, args[0]!);
    if (index === undefined) return;
    const body = await tx.readAhead.take(index);
    // Clients that fetch everything ask for n+1 next: start opening it while n is written.
    tx.readAhead.schedule(index + 1, tx.deleted);
    ctx.stats.retr += 1;
    await ctx.message(`${tx.maildrop.messages[index]!.size} octets`, body);
  },
};
