/**
 * An issuer's private CA: PEM certificates trusted, instead of the public roots, for that issuer's
 * discovery, JWKS and introspection requests (curl's `--cacert` rule: a given CA replaces the
 * default store). Checked once when configured, so a wrong file fails at start-up naming what is
 * wrong rather than as a TLS failure at the first login.
 */
import { X509Certificate } from 'node:crypto';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * What is wrong with `pem` as a CA file, or undefined when it holds one or more certificates that
 * parse and are valid at `nowMs`. The text never quotes the file's content.
 */
export function caProblem(pem: string, nowMs: number = Date.now()): string | undefined {
  const blocks = [...pem.matchAll(BLOCK)];
  if (blocks.length === 0) {
    return pem.includes('-----BEGIN')
      ? 'its PEM block is not terminated (-----END CERTIFICATE----- missing)'
      : 'it holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert DER with `openssl x509 -inform der`';
  }
  for (const [n, block] of blocks.entries()) {
    const label = block[1]!;
    if (label !== 'CERTIFICATE') {
      return label.includes('PRIVATE KEY')
        ? `block ${n + 1} is a private key; a CA file holds only certificates (and the key must not be shared)`
        : `block ${n + 1} is a ${label}, not a CERTIFICATE`;
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block[0]);
    } catch {
      return `certificate ${n + 1} does not parse`;
    }
    const subject = cert.subject.replaceAll('\n', ', ');
    if (Date.parse(cert.validTo) < nowMs) {
      return `certificate ${n + 1} (${subject}) expired on ${new Date(cert.validTo).toISOString()}`;
    }
    if (Date.parse(cert.validFrom) > nowMs) {
      return `certificate ${n + 1} (${subject}) is not valid before ${new Date(cert.validFrom).toISOString()}`;
    }
  }
  return undefined;
}
