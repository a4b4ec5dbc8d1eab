/**
 * A CA file a user named (`ca = FILE`, `--ca`, `--issuer-ca`), checked when it is read, so a wrong
 * file is reported by its name and what is wrong with it, not later as an untrusted certificate
 * that looks like a network fault. One check for the POP3 client, the OAuth client and the
 * server's issuers. The messages never quote the file's content.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * What is wrong with `pem` as a CA file, or undefined when it holds certificates that parse, of
 * which at least one is valid at `nowMs` (a bundle may carry an expired one beside good ones).
 */
export function caProblem(pem: string, nowMs: number = Date.now()): string | undefined {
  const blocks = [...pem.matchAll(BLOCK)];
  if (blocks.length === 0) {
    if (pem.includes('-----BEGIN'))
      return 'its PEM block is not terminated (-----END CERTIFICATE----- missing)';
    return /^\s*MII/.test(pem)
      ? 'it holds no PEM certificate: it looks like base64 without the -----BEGIN CERTIFICATE----- lines'
      : 'it holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert DER with `openssl x509 -inform der`';
  }
  const invalid: string[] = [];
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
      invalid.push(`certificate ${n + 1} (${subject}) expired on ${new Date(cert.validTo).toISOString()}`);
    } else if (Date.parse(cert.validFrom) > nowMs) {
      invalid.push(
        `certificate ${n + 1} (${subject}) is not valid before ${new Date(cert.validFrom).toISOString()}`,
      );
    }
  }
  return invalid.length === blocks.length ? invalid.join('; ') : undefined;
}

/** Throws ConfigError (ERR_CONFIG_INVALID, `key`) naming `path` when {@link caProblem} finds one. */
export function checkCaPem(pem: string, path: string, key: string): string {
  const problem = caProblem(pem);
  if (problem !== undefined)
    throw new ConfigError('ERR_CONFIG_INVALID', `the CA file ${path} is not usable: ${problem}`, { key });
  return pem;
}

/** The PEM text of the CA file at `path`, checked; a ConfigError naming the file otherwise. */
export async function readCaFile(path: string, key: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError('ERR_CONFIG_INVALID', `cannot read the CA file ${path} (${code})`, { key });
  }
  return checkCaPem(text, path, key);
}
