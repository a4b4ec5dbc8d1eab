import { Readable } from 'node:stream';
import { messageIndex, transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';
import { topOf } from '../top-filter.ts';

/** TOP msg n (RFC 1939 §7): header, blank line, and the first n body lines. */
export const top: CommandHandler = {
  verb: 'TOP',
  states: ['TRANSACTION'],
  minArgs: 2,
  maxArgs: 2,
  multiline: 'always',
  async run(ctx, args) {
    const tx = transactionOf(ctx);
    const index = messageIndex(ctx, tx, args[0]!);
    if (index === undefined) return;
    const n = args[1]!;
    if (!/^[0-9]{1,9}$/.test(n)) {
      ctx.err('Invalid number of lines.');
      return;
    }
    const source = await tx.maildrop.read(index);
    ctx.stats.top += 1;
    await ctx.message('Top of message follows', Readable.from(topOf(source, Number(n))));
  },
};
