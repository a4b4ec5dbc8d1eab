import { messageIndex, transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/**
 * DELE msg (RFC 1939 §5): only marks; the UPDATE state removes. Needs the token's delete right
 * (a read-only scope cannot delete), refused with `[AUTH]` and a text saying which right.
 */
export const dele: CommandHandler = {
  verb: 'DELE',
  states: ['TRANSACTION'],
  minArgs: 1,
  maxArgs: 1,
  multiline: 'never',
  run(ctx, args) {
    const tx = transactionOf(ctx);
    if (!tx.canDelete) {
      ctx.err('Your access token does not grant the delete scope; messages cannot be deleted.', 'AUTH');
      return;
    }
    const index = messageIndex(ctx, tx, args[0]!);
    if (index === undefined) return;
    tx.deleted.add(index);
    ctx.stats.dele += 1;
    ctx.ok(`Message ${index + 1} marked deleted.`);
  },
};
