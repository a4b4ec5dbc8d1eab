/**
 * Sockets for the client: TCP, implicit TLS (RFC 8314) and the STLS upgrade (RFC 2595 §4).
 * Certificate and host-name verification are always on; only extra CAs can be added.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Pop3Error } from '../errors.ts';
import { certificateAdvice, classifyTlsFailure } from '../internal/tls-errors.ts';
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

/**
 * A TLS failure as the user must see it: a certificate that does not verify is a configuration
 * fault (ERR_POP3_TLS_UNTRUSTED, exit 78), plain POP3 where TLS was expected is the wrong mode
 * (ERR_POP3_WRONG_TLS_MODE), anything else a handshake the network cut (ERR_POP3_TLS, exit 75).
 */
function tlsError(err: Error, options: ResolvedClientOptions, phase: 'implicit' | 'stls'): Pop3Error {
  const { kind, code } = classifyTlsFailure(err);
  if (kind === 'not-tls' && phase === 'implicit') {
    return new Pop3Error(
      'ERR_POP3_WRONG_TLS_MODE',
      `${options.host}:${options.port} does not speak TLS from the first byte (${code}): it is a plain POP3 port; use --tls starttls (tls = "starttls")`,
      { cause: err },
    );
  }
  if (kind === 'untrusted' || kind === 'name' || kind === 'expired') {
    return new Pop3Error(
      'ERR_POP3_TLS_UNTRUSTED',
      `${certificateAdvice(kind, 'the POP3 server', options.servername ?? options.host)} (${code})`,
      { cause: err },
    );
  }
  return new Pop3Error(
    'ERR_POP3_TLS',
    `the TLS handshake with ${options.host}:${options.port} failed (${code ?? err.message}); try again later`,
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
      tcpUp ? tlsError(err, options, 'implicit') : connectError(err),
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
  await waitFor(socket, 'secureConnect', options.timeouts.connect, signal, (err) =>
    tlsError(err, options, 'stls'),
  );
  assertAuthorized(socket);
  return socket;
}

function assertAuthorized(socket: tls.TLSSocket): void {
  if (!socket.authorized) {
    socket.destroy();
    throw new Pop3Error('ERR_POP3_TLS', 'the server certificate was not verified; refusing to continue');
  }
}

/** A POP3 server greets at once; this much silence on a plaintext port is worth a look. */
const SILENT_GREETING_MS = 2000;

/**
 * Whether `host:port` speaks TLS from the first byte: a second connection offers a TLS handshake
 * and reports whether the peer answers it. Diagnosis only: nothing is sent after the handshake,
 * the certificate is not trusted for anything, and the connection is closed at once.
 */
function speaksImplicitTls(options: ResolvedClientOptions, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const servername = options.servername ?? serverNameFor(options.host);
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      rejectUnauthorized: false,
      ...(servername !== undefined ? { servername } : {}),
    });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/**
 * On a plaintext connect, a server that stays silent past SILENT_GREETING_MS may be an
 * implicit-TLS port waiting for our handshake (`--tls starttls` against port 995): ask it with a
 * second, diagnostic connection and `fail` at once with the fix instead of waiting for timeouts.
 * `stop()` once the greeting arrived.
 */
export function sniffImplicitTls(
  options: ResolvedClientOptions,
  fail: (err: Pop3Error) => void,
): { stop(): void } {
  let stopped = false;
  const timer = setTimeout(
    () => {
      void speaksImplicitTls(options).then((tlsPort) => {
        if (!tlsPort || stopped) return;
        fail(
          new Pop3Error(
            'ERR_POP3_WRONG_TLS_MODE',
            `${options.host}:${options.port} sends no greeting and answers a TLS handshake: it speaks TLS from the first byte; use --tls implicit (tls = "implicit")`,
          ),
        );
      });
    },
    Math.min(SILENT_GREETING_MS, options.timeouts.greeting),
  );
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
