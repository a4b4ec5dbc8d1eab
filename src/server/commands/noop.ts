import type { CommandHandler } from '../registry.ts';

/** NOOP (RFC 1939 §5). */
export const noop: CommandHandler = {
  verb: 'NOOP',
  states: ['TRANSACTION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'never',
  run(ctx) {
    ctx.ok();
  },
};
