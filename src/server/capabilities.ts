/**
 * The CAPA answer (RFC 2449 §5), truthful for the session's state: STLS only before TLS, SASL
 * only when credentials may be sent (TLS up, or a loopback peer on a loopback listener with
 * plaintext explicitly allowed: plaintext-policy.ts), USER only with a password backend,
 * LOGIN-DELAY only when configured.
 */
import type { CommandContext } from './context.ts';

/** Capability lines for `ctx`, in a stable order. */
export function capabilities(ctx: CommandContext): string[] {
  const { options, state } = ctx;
  const lines = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  // We never remove mail on our own: RFC 2449 §6.7 "EXPIRE NEVER".
  lines.push('EXPIRE NEVER');
  if (options.loginDelaySeconds !== undefined) lines.push(`LOGIN-DELAY ${options.loginDelaySeconds}`);
  if (state === 'AUTHORIZATION') {
    if (ctx.credentialsAllowed) {
      if (options.passwordBackend !== undefined) lines.push('USER');
      if (options.mechanisms.length > 0) lines.push(`SASL ${options.mechanisms.join(' ')}`);
    }
    if (ctx.stlsAvailable) lines.push('STLS');
  }
  if (options.implementation !== false) lines.push(`IMPLEMENTATION ${options.implementation}`);
  return lines;
}
