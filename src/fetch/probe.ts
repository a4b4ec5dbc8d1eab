/**
 * Connectivity diagnosis for `popgate doctor`: DNS, TCP, TLS (protocol, certificate, expiry) and
 * CAPA. The TLS probe inspects the certificate without trusting it (like `openssl s_client`) so it
 * can say *why* verification fails; it sends no credential. CAPA goes through the real client,
 * with verification on.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Pop3TlsMode } from '../client/options.ts';
import { Pop3Client } from '../client/pop3-client.ts';
import { checkServerIdentityStrict, serverNameFor } from '../internal/tls-identity.ts';
import type { Pop3Capabilities } from '../protocol/capabilities.ts';

export interface ProbeOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: Exclude<Pop3TlsMode, 'none-loopback-insecure'>;
  readonly ca?: string;
  readonly timeoutMs?: number;
}

export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

export interface TlsFacts {
  readonly protocol: string | null;
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  readonly subject: string | undefined;
  readonly issuer: string | undefined;
  readonly validTo: Date | undefined;
  readonly altNames: string | undefined;
}

export interface ProbeResult {
  readonly dns: Outcome<string[]>;
  readonly tcp: Outcome<number>;
  readonly tls: Outcome<TlsFacts>;
  readonly capa: Outcome<Pop3Capabilities>;
}

const fail = (error: unknown): { ok: false; error: string } => ({
  ok: false,
  error: (error as NodeJS.ErrnoException)?.code ?? (error instanceof Error ? error.message : String(error)),
});

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function openTcp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Reads one CRLF-terminated line from a plaintext socket. */
function readLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) {
        socket.off('data', onData);
        resolve(text.split('\r\n')[0] ?? '');
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function certFacts(socket: TLSSocket): TlsFacts {
  const cert: PeerCertificate | undefined = socket.getPeerCertificate();
  const has = cert && Object.keys(cert).length > 0;
  const error = socket.authorizationError;
  return {
    protocol: socket.getProtocol(),
    authorized: socket.authorized,
    authorizationError: error === null || error === undefined ? undefined : String(error),
    subject: has ? first(cert.subject?.CN) : undefined,
    issuer: has ? (first(cert.issuer?.O) ?? first(cert.issuer?.CN)) : undefined,
    validTo: has && cert.valid_to ? new Date(cert.valid_to) : undefined,
    altNames: has ? cert.subjectaltname : undefined,
  };
}

async function probeTls(options: ProbeOptions): Promise<TlsFacts> {
  let base: Socket | undefined;
  if (options.tls === 'starttls') {
    base = await openTcp(options.host, options.port);
    await readLine(base);
    base.write('STLS\r\n');
    const answer = await readLine(base);
    if (!answer.startsWith('+OK')) throw new Error(`the server refused STLS: ${answer.slice(0, 100)}`);
  }
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    // Diagnosis only: the certificate is inspected, not trusted, and nothing secret is sent.
    const s = tlsConnect({
      host: options.host,
      port: options.port,
      ...(base ? { socket: base } : {}),
      ...(options.ca ? { ca: options.ca } : {}),
      servername: serverNameFor(options.host) ?? '',
      checkServerIdentity: checkServerIdentityStrict,
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
  const facts = certFacts(socket);
  socket.destroy();
  return facts;
}

export async function probeServer(options: ProbeOptions): Promise<ProbeResult> {
  const timeout = options.timeoutMs ?? 10_000;
  const dns = await withTimeout(lookup(options.host, { all: true }), timeout, 'DNS lookup').then(
    (list): Outcome<string[]> => ({ ok: true, value: list.map((a) => a.address) }),
    fail,
  );
  if (!dns.ok)
    return {
      dns,
      tcp: fail(new Error('skipped')),
      tls: fail(new Error('skipped')),
      capa: fail(new Error('skipped')),
    };
  const started = Date.now();
  const tcp = await withTimeout(openTcp(options.host, options.port), timeout, 'TCP connect').then(
    (socket): Outcome<number> => {
      socket.destroy();
      return { ok: true, value: Date.now() - started };
    },
    fail,
  );
  if (!tcp.ok) return { dns, tcp, tls: fail(new Error('skipped')), capa: fail(new Error('skipped')) };
  const tls = await withTimeout(probeTls(options), timeout, 'TLS handshake').then(
    (value): Outcome<TlsFacts> => ({ ok: true, value }),
    fail,
  );
  const client = new Pop3Client({
    host: options.host,
    port: options.port,
    tls: options.tls,
    ...(options.ca ? { ca: options.ca } : {}),
    timeouts: { connect: timeout, greeting: timeout, command: timeout },
  });
  const capa = await client.connect().then(
    (value): Outcome<Pop3Capabilities> => ({ ok: true, value }),
    (error: unknown) => ({
      ok: false as const,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  await client.quit().catch(() => client.close());
  return { dns, tcp, tls, capa };
}
