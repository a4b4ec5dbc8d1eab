import { PLAINTEXT_DISALLOWED } from '../plaintext-policy.ts';
import type { CommandHandler } from '../registry.ts';

/** PASS string (RFC 1939 §7): the rest of the line is the password; checked by the backend. */
export const pass: CommandHandler = {
  verb: 'PASS',
  states: ['AUTHORIZATION'],
  minArgs: 1,
  maxArgs: 1,
  multiline: 'never',
  restOfLine: true,
  available: (ctx) => ctx.options.passwordBackend !== undefined,
  async run(ctx, args) {
    const backend = ctx.options.passwordBackend;
    const name = ctx.pendingUser;
    ctx.pendingUser = undefined;
    if (backend === undefined || !ctx.credentialsAllowed) {
      ctx.err(PLAINTEXT_DISALLOWED, 'AUTH');
      return;
    }
    if (name === undefined) {
      ctx.err('Send USER first.');
      return;
    }
    let ok: boolean;
    try {
      ok = await backend.verify(name, args[0]!, {});
    } catch {
      await ctx.loginFailed({
        user: name,
        reason: 'ERR_AUTH_UNAVAILABLE',
        mechanism: 'USER',
        temporary: true,
      });
      ctx.err('Temporary authentication failure; try again later.', 'SYS/TEMP');
      return;
    }
    if (!ok) {
      await ctx.loginFailed({
        user: name,
        reason: 'ERR_POP3_AUTH_FAILED',
        mechanism: 'USER',
        temporary: false,
      });
      ctx.err('Authentication failed.', 'AUTH');
      return;
    }
    await ctx.login({ user: name, mechanism: 'USER', token: undefined });
  },
};
