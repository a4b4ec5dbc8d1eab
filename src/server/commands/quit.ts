import type { CommandHandler } from '../registry.ts';

/**
 * QUIT (RFC 1939 §4, §6): in AUTHORIZATION just closes; in TRANSACTION enters UPDATE, commits
 * the marked deletions atomically, then answers and closes.
 */
export const quit: CommandHandler = {
  verb: 'QUIT',
  states: ['AUTHORIZATION', 'TRANSACTION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'never',
  async run(ctx) {
    await ctx.quit();
  },
};
