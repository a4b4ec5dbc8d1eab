import { answerListing } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** LIST [msg] (RFC 1939 §5): exact sizes (CRLF counted, before dot-stuffing). */
export const list: CommandHandler = {
  verb: 'LIST',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 1,
  multiline: 'without-argument',
  run(ctx, args) {
    answerListing(
      ctx,
      args[0],
      (m) => m.size,
      (count, octets) => `${count} messages (${octets} octets)`,
    );
  },
};
