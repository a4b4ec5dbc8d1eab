/**
 * A throwaway certificate authority for tests and the `npm start` demo: one CA, then server
 * certificates it signs, made with the `openssl` CLI (EC P-256 keys, SHA-256 signatures).
 * Never use these outside a development machine: the CA key sits next to the certificates.
 *
 * @example
 * ```ts
 * const ca = await createDevCa(dir);
 * const server = await ca.issue('pop3-server'); // SAN: DNS:localhost, IP:127.0.0.1, IP:::1
 * tls.createServer({ cert: server.certPem, key: server.keyPem });
 * tls.connect({ host: '127.0.0.1', port, ca: ca.caCertPem });
 * ```
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { DevToolsError } from './errors.ts';

/** A certificate and its private key, as files (key mode 0600) and as PEM text. */
export interface IssuedCertificate {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  /** The private key (PKCS#8 PEM). A secret: never log it. */
  readonly keyPem: string;
  /** Subject alternative names as written into the certificate, e.g. `DNS:localhost`. */
  readonly sans: readonly string[];
}

/** A development CA living in one directory. */
export interface DevCa {
  readonly dir: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly caCertPem: string;
  /**
   * Issues a server certificate signed by this CA into `DIR/<name>.crt` and `DIR/<name>.key`.
   * `sans` entries are `DNS:name`, `IP:addr`, or a bare host name / IP address (detected);
   * default {@link DEFAULT_SANS}.
   */
  issue(name: string, sans?: readonly string[]): Promise<IssuedCertificate>;
}

export interface DevCaOptions {
  /** Common name of the CA certificate. Default `popgate development CA`. */
  commonName?: string;
  /** Validity in days of the CA and of the certificates it issues. Default 30. */
  days?: number;
  /** Path of the openssl binary. Default `openssl` from PATH. */
  openssl?: string;
}

/** The SANs a loopback server needs: `localhost`, `127.0.0.1` and `::1`. */
export const DEFAULT_SANS: readonly string[] = Object.freeze(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DNS_RE = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

/** Normalises one SAN to `DNS:x` or `IP:x`, refusing anything that could inject openssl config. */
export function normaliseSan(san: string): string {
  let kind: 'DNS' | 'IP' | undefined;
  let value = san;
  const match = /^(DNS|IP):(.*)$/i.exec(san);
  if (match) {
    kind = match[1]!.toUpperCase() as 'DNS' | 'IP';
    value = match[2]!;
  }
  const ip = isIP(value) !== 0;
  kind ??= ip ? 'IP' : 'DNS';
  if ((kind === 'IP' && !ip) || (kind === 'DNS' && !DNS_RE.test(value))) {
    throw new ConfigError('ERR_CONFIG_INVALID', `invalid subject alternative name ${JSON.stringify(san)}`, {
      key: 'sans',
    });
  }
  return `${kind}:${value}`;
}

function run(openssl: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(openssl, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(
          new DevToolsError(
            'ERR_DEVTOOLS_CERT',
            `openssl ${args[0]} failed: ${String(stderr).trim().slice(0, 500) || error.message}; is the openssl CLI installed?`,
            { cause: error },
          ),
        );
      } else resolve(stdout);
    });
  });
}

async function writeKey(path: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await rm(path, { force: true });
  await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return pem;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive, as RFC 5280 requires
  return `0x${bytes.toString('hex')}`;
}

/**
 * Creates a CA (key `ca.key`, certificate `ca.crt`) in `dir` (created with mode 0700 if absent).
 * RFC 5280 extensions: basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign.
 */
export async function createDevCa(dir: string, options: DevCaOptions = {}): Promise<DevCa> {
  const openssl = options.openssl ?? 'openssl';
  const days = options.days ?? 30;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new ConfigError('ERR_CONFIG_INVALID', `days must be an integer from 1 to 3650, got ${days}`, {
      key: 'days',
    });
  }
  const commonName = options.commonName ?? 'popgate development CA';
  if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(commonName)) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'commonName may hold only letters, digits, space, ._-', {
      key: 'commonName',
    });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caKeyPath = join(dir, 'ca.key');
  const caCertPath = join(dir, 'ca.crt');
  await writeKey(caKeyPath);
  await run(openssl, [
    'req',
    '-x509',
    '-new',
    '-key',
    caKeyPath,
    '-sha256',
    '-days',
    String(days),
    '-set_serial',
    serial(),
    '-subj',
    `/CN=${commonName} ${randomBytes(4).toString('hex')}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-addext',
    'subjectKeyIdentifier=hash',
    '-out',
    caCertPath,
  ]);
  const caCertPem = await readFile(caCertPath, 'utf8');

  async function issue(name: string, sans: readonly string[] = DEFAULT_SANS): Promise<IssuedCertificate> {
    if (!NAME_RE.test(name) || name === 'ca') {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `certificate name ${JSON.stringify(name)} is not a safe file name`,
        {
          key: 'name',
        },
      );
    }
    if (sans.length === 0) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        'a certificate needs at least one subject alternative name',
        {
          key: 'sans',
        },
      );
    }
    const normalised = sans.map(normaliseSan);
    const keyPath = join(dir, `${name}.key`);
    const certPath = join(dir, `${name}.crt`);
    const csrPath = join(dir, `${name}.csr`);
    const extPath = join(dir, `${name}.ext`);
    const keyPem = await writeKey(keyPath);
    const cn = normalised.find((s) => s.startsWith('DNS:'))?.slice(4) ?? name;
    await run(openssl, ['req', '-new', '-key', keyPath, '-sha256', '-subj', `/CN=${cn}`, '-out', csrPath]);
    await writeFile(
      extPath,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        `subjectAltName=${normalised.join(',')}`,
        '',
      ].join('\n'),
    );
    try {
      await run(openssl, [
        'x509',
        '-req',
        '-in',
        csrPath,
        '-CA',
        caCertPath,
        '-CAkey',
        caKeyPath,
        '-set_serial',
        serial(),
        '-days',
        String(days),
        '-sha256',
        '-extfile',
        extPath,
        '-out',
        certPath,
      ]);
    } finally {
      await rm(csrPath, { force: true });
      await rm(extPath, { force: true });
    }
    const certPem = await readFile(certPath, 'utf8');
    return Object.freeze({ name, certPath, keyPath, certPem, keyPem, sans: Object.freeze(normalised) });
  }

  return Object.freeze({ dir, caCertPath, caKeyPath, caCertPem, issue });
}
