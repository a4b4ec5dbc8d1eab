/**
 * Sockets for the client: TCP, implicit TLS (RFC 8314) and the STLS upgrade (RFC 2595 §4).
 * Certificate and host-name verification are always on; only extra CAs can be added.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Pop3Error } from '../errors.ts';
import { checkServerIdentityStrict, serverNameFor } from '../internal/tls-identity.ts';
import type { ResolvedClientOptions } from './options.ts';

function tlsOptions(options: ResolvedClientOptions): tls.ConnectionOptions {
  const servername = options.servername ?? serverNameFor(options.host);
  // Verify against the configured name even when connecting by IP.
  const identity = options.servername ?? options.host;
  const out: tls.ConnectionOptions = {
    host: options.host,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    checkServerIdentity: (_host, cert) => checkServerIdentityStrict(identity, cert),
  };
  if (servername !== undefined) out.servername = servername;
  if (options.ca !== undefined) out.ca = [...options.ca];
  return out;
}

function tlsError(err: Error): Pop3Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new Pop3Error(
    'ERR_POP3_TLS',
    `TLS with the POP3 server failed (${code ?? err.message}); check the host name and pass ca: for a private CA`,
    { cause: err },
  );
}

/** Waits for `event` on `socket` with a timeout and an abort signal; rejects typed. */
function waitFor(
  socket: net.Socket,
  event: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  mapError: (err: Error) => Pop3Error,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, onOk);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: Pop3Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onOk = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => fail(mapError(err));
    const onClose = () => fail(new Pop3Error('ERR_POP3_CLOSED', 'the connection closed during set-up'));
    const onAbort = () => fail(new Pop3Error('ERR_POP3_ABORTED', 'connect was aborted'));
    const timer = setTimeout(
      () => fail(new Pop3Error('ERR_POP3_TIMEOUT', `no connection within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once(event, onOk);
    socket.once('error', onError);
    socket.once('close', onClose);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Opens TCP, or implicit TLS with verification. */
export async function openSocket(options: ResolvedClientOptions, signal?: AbortSignal): Promise<net.Socket> {
  const connectError = (err: Error) =>
    new Pop3Error(
      'ERR_POP3_CONNECT',
      `could not connect to ${options.host}:${options.port} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  if (options.tls === 'implicit') {
    const socket = tls.connect({ ...tlsOptions(options), port: options.port });
    let tcpUp = false;
    socket.once('connect', () => {
      tcpUp = true;
    });
    await waitFor(socket, 'secureConnect', options.timeouts.connect, signal, (err) =>
      tcpUp ? tlsError(err) : connectError(err),
    );
    assertAuthorized(socket);
    return socket;
  }
  const socket = net.connect({ host: options.host, port: options.port });
  await waitFor(socket, 'connect', options.timeouts.connect, signal, connectError);
  return socket;
}

/** Upgrades a plain socket after `+OK` to STLS. The caller has already detached its readers. */
export async function upgradeSocket(
  raw: net.Socket,
  options: ResolvedClientOptions,
  signal?: AbortSignal,
): Promise<tls.TLSSocket> {
  const socket = tls.connect({ ...tlsOptions(options), socket: raw });
  await waitFor(socket, 'secureConnect', options.timeouts.connect, signal, tlsError);
  assertAuthorized(socket);
  return socket;
}

function assertAuthorized(socket: tls.TLSSocket): void {
  if (!socket.authorized) {
    socket.destroy();
    throw new Pop3Error('ERR_POP3_TLS', 'the server certificate was not verified; refusing to continue');
  }
}
