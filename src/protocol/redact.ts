/**
 * Redaction for logs and diagnostics events (architecture.md R13): credentials are replaced whole,
 * never masked by keeping a prefix, and untrusted text is capped.
 */
import { capText } from './response.ts';

export const REDACTED = '[REDACTED]';

/**
 * A command line safe to log: PASS's argument, APOP's digest, AUTH's initial response and any
 * unknown verb's arguments are replaced. Input may include CRLF; it is stripped.
 */
export function redactCommandLine(line: string | Buffer, max = 1024): string {
  const text = (typeof line === 'string' ? line : line.toString('latin1')).replace(/\r?\n$/, '');
  const space = text.indexOf(' ');
  const verb = (space === -1 ? text : text.slice(0, space)).toUpperCase();
  if (space === -1) return capText(verb, max);
  const args = text.slice(space + 1).split(' ');
  switch (verb) {
    case 'PASS':
      return `PASS ${REDACTED}`;
    case 'APOP':
      return `APOP ${capText(args[0] ?? '', max)} ${REDACTED}`;
    case 'AUTH':
      return args.length > 1
        ? `AUTH ${capText(args[0] ?? '', 40)} ${REDACTED}`
        : `AUTH ${capText(args[0] ?? '', 40)}`;
    case 'USER':
    case 'LIST':
    case 'RETR':
    case 'DELE':
    case 'TOP':
    case 'UIDL':
    case 'STAT':
    case 'NOOP':
    case 'RSET':
    case 'QUIT':
    case 'CAPA':
    case 'STLS':
      return capText(text, max);
    default:
      return `${capText(verb, 8)} ${REDACTED}`;
  }
}

/** A SASL response line (client to server) is always a credential or part of one. */
export function redactSaslLine(_line?: string | Buffer): string {
  return REDACTED;
}

/**
 * Replaces every occurrence of each secret in `text` (defence in depth for text that might
 * have been built from a secret, e.g. a server echoing a command).
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}
