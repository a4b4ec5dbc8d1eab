import { answerListing } from '../message-arg.ts';
import type { CommandHandler } from '../registry.ts';

/** UIDL [msg] (RFC 1939 §7): the store's stable unique ids. */
export const uidl: CommandHandler = {
  verb: 'UIDL',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 1,
  multiline: 'without-argument',
  run(ctx, args) {
    answerListing(
      ctx,
      args[0],
      (m) => m.uid,
      () => '',
    );
  },
};
