import type { CommandHandler } from '../registry.ts';

/**
 * STLS (RFC 2595 §4): only in AUTHORIZATION, only before TLS. Everything the client sent after
 * STLS and before the handshake is dropped, never parsed (architecture.md R10).
 */
export const stls: CommandHandler = {
  verb: 'STLS',
  states: ['AUTHORIZATION'],
  minArgs: 0,
  maxArgs: 0,
  multiline: 'never',
  async run(ctx) {
    if (ctx.secure) {
      ctx.err('TLS is already active.');
      return;
    }
    if (!ctx.stlsAvailable) {
      ctx.err('STLS is not available on this server.');
      return;
    }
    ctx.ok('Begin TLS negotiation now.');
    await ctx.startTls();
  },
};
