/**
 * Who may send credentials in plaintext (RFC 2595 §2.2, RFC 8314 §3): nobody, except a loopback
 * peer on a loopback listener of a server that explicitly allows it (`allowPlaintextLoopback`,
 * for tests and local development). Whatever else is configured (a certificate, a listener on
 * 0.0.0.0 or on a public address), every other connection must be TLS first: CAPA shows STLS
 * and no SASL or USER, and AUTH, USER and PASS are refused with Dovecot's answer
 * ({@link PLAINTEXT_DISALLOWED}). Both addresses are judged by the one loopback rule
 * (src/internal/loopback.ts, architecture.md R15). Pure, so every combination is unit-tested.
 */
import { isLoopbackAddress, isLoopbackHost } from '../internal/loopback.ts';

/** The `-ERR [AUTH]` text for credentials before TLS: Dovecot's, word for word. */
export const PLAINTEXT_DISALLOWED =
  'Plaintext authentication disallowed on non-secure (SSL/TLS) connections.';

export interface PlaintextCredentialsInput {
  /** `allowPlaintextLoopback` of the server's options. */
  readonly allowPlaintextLoopback: boolean;
  /** The host the listener was configured with (`127.0.0.1`, `::1`, `localhost`, `0.0.0.0`, ...). */
  readonly listenerHost: string;
  /** The connection's peer as the kernel reports it (`socket.remoteAddress`); may be absent. */
  readonly peerAddress: string | undefined;
}

/** True when this connection may send credentials before TLS is up. */
export function plaintextCredentialsAllowed(input: PlaintextCredentialsInput): boolean {
  return (
    input.allowPlaintextLoopback &&
    isLoopbackHost(input.listenerHost) &&
    input.peerAddress !== undefined &&
    isLoopbackAddress(input.peerAddress)
  );
}
