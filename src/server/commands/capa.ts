import { capabilities } from '../capabilities.ts';
import type { CommandHandler } from '../registry.ts';

/** CAPA (RFC 2449 §5): valid in every state, answer depends on it. */
export const capa: CommandHandler = {
  verb: 'CAPA',
  states: ['AUTHORIZATION', 'TRANSACTION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'always',
  run(ctx) {
    ctx.multiline('Capability list follows', capabilities(ctx));
  },
};
