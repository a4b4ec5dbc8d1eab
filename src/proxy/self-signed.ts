/**
 * A self-signed certificate for the proxy's local TLS when the operator gives none: an EC P-256
 * key and an X.509 v3 certificate built here in DER (node:crypto has no certificate builder and
 * popgate takes no dependency for one), valid 825 days (the most Apple platforms accept for a
 * TLS server certificate), with the names the proxy answers to as subjectAltName. Stored in the
 * data directory (key 0600) and reused; replaced when it nears expiry or lacks a needed name.
 * Users import the certificate file, or pin its SHA-256 fingerprint (fetchmail `sslfingerprint`).
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { PopgateError } from '../errors.ts';
import { writeFileAtomic } from '../internal/durable-fs.ts';

const VALID_DAYS = 825;
const RENEW_BEFORE_MS = 30 * 86_400_000;

// --- DER, just what a certificate needs ------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let v = part >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'latin1'))
    : tlv(0x18, Buffer.from(`${iso}Z`, 'latin1'));
}
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g: string) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

/** Builds a self-signed certificate (PEM) and its key (PKCS#8 PEM) for `names`. */
export function buildSelfSigned(names: readonly string[], now = new Date()): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The BIT STRING of the SPKI (last element): its SHA-1 is the RFC 5280 §4.2.1.2 key identifier.
  const keyId = createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest();
  const subject = seq(set(seq(oid('2.5.4.3'), utf8('popgate proxy (self-signed)'))));
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const sans = names.map((n) =>
    isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n.toLowerCase(), 'latin1')),
  );
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ecdsaSha256,
    subject,
    seq(time(new Date(now.getTime() - 3_600_000)), time(new Date(now.getTime() + VALID_DAYS * 86_400_000))),
    subject,
    spki,
    tlv(
      0xa3,
      seq(
        extension('2.5.29.19', true, seq(bool(true))), // basicConstraints CA:TRUE, as `openssl req -x509`
        extension('2.5.29.15', true, bits(Buffer.from([0x84]), 2)), // digitalSignature, keyCertSign
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        extension('2.5.29.14', false, octets(keyId)),
        extension('2.5.29.35', false, seq(tlv(0x80, keyId))),
        extension('2.5.29.17', false, seq(...sans)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = seq(tbs, ecdsaSha256, bits(signature));
  const cert = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

export interface SelfSignedFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** SHA-256 fingerprint, colon-separated hex (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
  /** True when this call created (or replaced) the pair. */
  readonly created: boolean;
}

function covers(cert: X509Certificate, names: readonly string[]): boolean {
  return names.every((n) => (isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n) !== undefined));
}

/**
 * The proxy's self-signed pair in `dir` (created 0700): reused while valid for 30 more days and
 * covering `names`, otherwise created anew.
 */
export async function ensureSelfSigned(
  dir: string,
  names: readonly string[],
  now = new Date(),
): Promise<SelfSignedFiles> {
  const certFile = join(dir, 'self-signed.crt');
  const keyFile = join(dir, 'self-signed.key');
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    const cert = new X509Certificate(certPem);
    const fresh = new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_MS;
    if (fresh && covers(cert, names) && cert.checkPrivateKey(createPrivateKey(keyPem))) {
      return { certFile, keyFile, fingerprint: cert.fingerprint256, created: false };
    }
  } catch {
    // missing or unreadable: create below
  }
  const { cert, key } = buildSelfSigned(names, now);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await writeFileAtomic(keyFile, key, 0o600);
    await writeFileAtomic(certFile, cert, 0o644);
  } catch (error) {
    throw new PopgateError(
      'ERR_PROXY_CONFIG',
      `cannot write the self-signed certificate under ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: error },
    );
  }
  return { certFile, keyFile, fingerprint: new X509Certificate(cert).fingerprint256, created: true };
}
