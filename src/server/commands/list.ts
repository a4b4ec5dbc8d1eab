import { messageIndex, transactionOf } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** LIST [msg] (RFC 1939 §5): exact sizes (CRLF counted, before dot-stuffing). */
export const list: CommandHandler = {
  verb: 'LIST',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 1,
  multiline: 'without-argument',
  run(ctx, args) {
    const tx = transactionOf(ctx);
    const arg = args[0];
    if (arg !== undefined) {
      const index = messageIndex(ctx, tx, arg);
      if (index !== undefined) ctx.ok(`${index + 1} ${tx.maildrop.messages[index]!.size}`);
      return;
    }
    const lines: string[] = [];
    let size = 0;
    tx.maildrop.messages.forEach((m, i) => {
      if (tx.deleted.has(i)) return;
      lines.push(`${i + 1} ${m.size}`);
      size += m.size;
    });
    ctx.multiline(`${lines.length} messages (${size} octets)`, lines);
  },
};
