/**
 * The CAPA the proxy offers (RFC 2449 §5): its own, never the upstream's. USER and SASL PLAIN
 * only where credentials may be sent (TLS, or loopback listener and peer); STLS only before TLS
 * on a `pop3://` listener with local TLS; PIPELINING because the session reads pipelined
 * commands and answers them in order; RESP-CODES and AUTH-RESP-CODE because every refusal
 * carries one where RFC 2449/3206 defines it.
 */
import type { ProxyContext } from './context.ts';

export function proxyCapabilities(
  ctx: Pick<ProxyContext, 'state' | 'credentialsAllowed' | 'stlsAvailable'>,
): string[] {
  const lines = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (ctx.state === 'AUTHORIZATION') {
    if (ctx.credentialsAllowed) lines.push('USER', 'SASL PLAIN');
    if (ctx.stlsAvailable) lines.push('STLS');
  }
  lines.push('IMPLEMENTATION popgate-proxy');
  return lines;
}
