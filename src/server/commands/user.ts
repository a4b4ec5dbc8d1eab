import { PLAINTEXT_DISALLOWED } from '../plaintext-policy.ts';
import type { CommandHandler } from '../registry.ts';

/**
 * USER name (RFC 1939 §7): exists only when an operator configured a password backend (off by
 * default: popgate is for OAuth2), and only where credentials may be sent.
 */
export const user: CommandHandler = {
  verb: 'USER',
  states: ['AUTHORIZATION'],
  minArgs: 1,
  maxArgs: 1,
  multiline: 'never',
  available: (ctx) => ctx.options.passwordBackend !== undefined,
  run(ctx, args) {
    if (!ctx.credentialsAllowed) {
      ctx.err(PLAINTEXT_DISALLOWED, 'AUTH');
      return;
    }
    ctx.pendingUser = args[0]!;
    ctx.ok('Send PASS.');
  },
};
