/**
 * Reads a CA file a user named (`ca = FILE`, `--ca FILE`) and checks it when it is read, so a
 * wrong file is reported by its name and what is wrong with it, not later as an untrusted
 * certificate that looks like a network fault.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The PEM text of `path` when it holds one or more parseable certificates; else a ConfigError
 * (code ERR_CONFIG_INVALID, the given `key`) naming the file and the fault.
 */
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

/** Checks PEM text already read (see {@link readCaFile}); returns it unchanged. */
export function checkCaPem(text: string, path: string, key: string): string {
  const blocks = text.match(BLOCK) ?? [];
  if (blocks.length === 0) {
    const hint = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
      ? ' (it holds a private key; ca wants the CA certificate)'
      : /^\s*MII/.test(text)
        ? ' (base64 without PEM lines: wrap it in -----BEGIN CERTIFICATE----- lines)'
        : text.startsWith('0\x82') || text.includes('\uFFFD')
          ? ' (it looks like DER: convert it with openssl x509 -inform der -in FILE -out ca.pem)'
          : '';
    throw new ConfigError('ERR_CONFIG_INVALID', `the CA file ${path} holds no PEM certificate${hint}`, {
      key,
    });
  }
  const expired: string[] = [];
  blocks.forEach((block, index) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `certificate ${index + 1} in the CA file ${path} does not parse; export it again as PEM`,
        { key },
      );
    }
    if (Date.parse(cert.validTo) < Date.now())
      expired.push(`${cert.subject.replace(/\n/g, ', ')} (${cert.validTo})`);
  });
  // A bundle may carry an expired certificate beside good ones; a file of expired ones only fails.
  if (expired.length === blocks.length) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `every certificate in the CA file ${path} has expired: ${expired.join('; ')}`,
      { key },
    );
  }
  return text;
}
