/**
 * The POP3 server: listeners (implicit TLS per RFC 8314 and plaintext with STLS per RFC 2595,
 * both at once), connection limits, TLS reload without dropping sessions, graceful shutdown
 * that never interrupts an UPDATE.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { PopgateError } from '../errors.ts';
import { silentLogger } from '../observability/logger.ts';
import { COMMAND_REGISTRY } from './commands/index.ts';
import { ConnectionCounter, LoginThrottle } from './limits.ts';
import {
  type ListenerKind,
  type ListenSpec,
  type Pop3ServerOptions,
  resolveServerOptions,
} from './options.ts';
import { Pop3Session } from './session.ts';
import type { ServerShared } from './shared.ts';
import { TlsMaterial, waitForHandshake } from './tls.ts';

/** A bound listener. */
export interface ListenerAddress {
  readonly kind: ListenerKind;
  readonly host: string;
  readonly port: number;
  /** `pop3s://host:port` or `pop3://host:port`. */
  readonly url: string;
}

export interface Pop3Server {
  /** Loads TLS material and binds every listener. */
  listen(): Promise<readonly ListenerAddress[]>;
  /** The bound listeners (empty before `listen`). */
  readonly addresses: readonly ListenerAddress[];
  /** Sessions open now. */
  readonly sessionCount: number;
  /** Re-reads certificate and key (SIGHUP); live sessions keep their TLS. */
  reloadTls(): Promise<void>;
  /**
   * Stops accepting, lets sessions finish for up to `graceMs` (default 30 s), then ends the
   * rest without committing anything; an UPDATE in progress always completes.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Creates a POP3 server that accepts OAuth2 bearer tokens (RFC 1939, 2449, 2595, 5034, 7628).
 *
 * @example
 * const server = createPop3Server({
 *   listen: ['pop3s://0.0.0.0:995', 'pop3://0.0.0.0:110'],
 *   tls: { certFile: '/etc/popgate/cert.pem', keyFile: '/etc/popgate/key.pem' },
 *   validator, store,
 * });
 * await server.listen();
 */
export function createPop3Server(input: Pop3ServerOptions): Pop3Server {
  const options = resolveServerOptions(input);
  const logger = options.logger ?? silentLogger;
  const sessions = new Set<Pop3Session>();
  const servers: Server[] = [];
  let addresses: ListenerAddress[] = [];
  let tls: TlsMaterial | undefined;
  let shared: ServerShared | undefined;
  let closing = false;
  const perIp = new ConnectionCounter(options.limits.maxConnectionsPerIp);

  function refuse(socket: Socket, kind: ListenerKind, limit: string, text: string): void {
    options.metrics?.connectionsRefused.inc({ limit });
    if (kind === 'starttls') socket.end(`-ERR [SYS/TEMP] ${text}\r\n`);
    else socket.destroy();
    setTimeout(() => socket.destroy(), 2_000).unref();
  }

  function onConnection(socket: Socket, listener: ListenSpec): void {
    const { kind } = listener;
    socket.on('error', () => {});
    if (closing || shared === undefined) {
      socket.destroy();
      return;
    }
    const ip = socket.remoteAddress ?? 'unknown';
    if (sessions.size >= options.limits.maxConnections) {
      refuse(socket, kind, 'total', 'Too many connections; try again later.');
      return;
    }
    if (!perIp.acquire(ip)) {
      refuse(socket, kind, 'ip', 'Too many connections from your address.');
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const ctx = shared;
    const start = (stream: Socket, secure: boolean) => {
      const session = new Pop3Session(stream, ctx, listener, secure);
      sessions.add(session);
      void session.finished.finally(() => {
        sessions.delete(session);
        perIp.release(ip);
      });
    };
    if (kind === 'starttls') {
      start(socket, false);
      return;
    }
    const material = tls!;
    const secure = new TLSSocket(socket, { isServer: true, secureContext: material.current });
    secure.on('error', () => {});
    void waitForHandshake(secure, options.limits.tlsHandshakeTimeoutMs).then((ok) => {
      if (ok && !closing) start(secure, true);
      else {
        secure.destroy();
        socket.destroy();
        perIp.release(ip);
      }
    });
  }

  return {
    get addresses() {
      return addresses;
    },
    get sessionCount() {
      return sessions.size;
    },
    async listen() {
      if (servers.length > 0) throw new PopgateError('ERR_SERVER_CONFIG', 'the server is already listening');
      if (options.tls !== undefined) tls = await TlsMaterial.load(options.tls);
      shared = {
        options,
        registry: COMMAND_REGISTRY,
        tls,
        perIp,
        perUser: new ConnectionCounter(options.limits.maxConnectionsPerUser),
        throttle: new LoginThrottle(options.limits),
        lastLogin: new Map(),
        logger,
        metrics: options.metrics,
        audit: options.audit,
        now: Date.now,
      };
      const bound: ListenerAddress[] = [];
      try {
        for (const spec of options.listen) {
          const server = createServer({ noDelay: true }, (socket) => onConnection(socket, spec));
          servers.push(server);
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ host: spec.host, port: spec.port, backlog: 1024 }, () => {
              server.off('error', reject);
              resolve();
            });
          });
          server.on('error', (error) =>
            logger.error({ code: (error as { code?: string }).code }, 'listener error'),
          );
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : spec.port;
          const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
          bound.push({
            kind: spec.kind,
            host: spec.host,
            port,
            url: `${spec.kind === 'implicit' ? 'pop3s' : 'pop3'}://${host}:${port}`,
          });
        }
      } catch (error) {
        await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
        servers.length = 0;
        const code = (error as { code?: string }).code ?? 'unknown';
        throw new PopgateError('ERR_SERVER_CONFIG', `cannot listen: ${code}`, { cause: error });
      }
      addresses = bound;
      logger.info({ listeners: bound.map((a) => a.url) }, 'POP3 server listening');
      return bound;
    },
    async reloadTls() {
      if (tls === undefined) throw new PopgateError('ERR_SERVER_CONFIG', 'the server has no TLS to reload');
      await tls.reload();
      logger.info({}, 'TLS certificate reloaded');
    },
    async close({ graceMs = 30_000 } = {}) {
      if (closing) return;
      closing = true;
      const stopped = Promise.all(
        servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
      const all = () => Promise.all([...sessions].map((s) => s.finished));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([all(), deadline]);
      clearTimeout(timer);
      // Past the deadline: end the rest. A session committing its UPDATE refuses to stop and
      // finishes on its own; we wait for it.
      for (const session of sessions) session.shutdown();
      await all();
      await stopped;
      logger.info({}, 'POP3 server stopped');
    },
  };
}
