/**
 * `createPop3Proxy`: the proxy's listeners (`pop3://` with STLS when there is local TLS,
 * `pop3s://`), connection limits in total and per client address, the per-account upstream
 * limit, TLS reload without touching live sessions (SIGHUP in the CLI), graceful close.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { PopgateError } from '../errors.ts';
import { isLoopbackHost } from '../internal/loopback.ts';
import { silentLogger } from '../observability/logger.ts';
import { ConnectionCounter, LoginThrottle } from '../server/limits.ts';
import type { ListenerKind } from '../server/options.ts';
import type { ListenerAddress } from '../server/server.ts';
import { TlsMaterial, waitForHandshake } from '../server/tls.ts';
import type { ProxyShared } from './context.ts';
import { type Pop3ProxyOptions, resolveProxyOptions } from './options.ts';
import { ProxySession } from './session.ts';

/** A bound proxy listener: the same shape as the server's. */
export type ProxyListenerAddress = ListenerAddress;

export interface Pop3Proxy {
  /** Loads TLS material and binds every listener. */
  listen(): Promise<readonly ProxyListenerAddress[]>;
  readonly addresses: readonly ProxyListenerAddress[];
  readonly sessionCount: number;
  /** Re-reads the certificate and key; live sessions keep their TLS. */
  reloadTls(): Promise<void>;
  /** Stops accepting, lets sessions finish for up to `graceMs` (default 30 s), ends the rest. */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Creates a POP3 proxy that lets password-only clients reach OAuth2-only mailboxes
 * (docs/proxy.md).
 *
 * @example
 * const proxy = createPop3Proxy({
 *   listen: ['pop3://127.0.0.1:1110'],
 *   accounts: [{ name: 'work', localUser: 'me@example.com', token, upstream: { host: 'outlook.office365.com', tls: 'implicit', user: 'me@example.com', mechanism: 'XOAUTH2', twoStep: true } }],
 *   checkPassword: (account, password) => passwords.verify(account, password),
 * });
 * await proxy.listen();
 */
export function createPop3Proxy(input: Pop3ProxyOptions): Pop3Proxy {
  const options = resolveProxyOptions(input);
  const logger = options.logger ?? silentLogger;
  const { limits } = options;
  const sessions = new Set<ProxySession>();
  const servers: Server[] = [];
  const perIp = new ConnectionCounter(limits.maxConnectionsPerIp);
  const perAccount = new ConnectionCounter(limits.maxConnectionsPerAccount);
  let addresses: ProxyListenerAddress[] = [];
  let tls: TlsMaterial | undefined;
  let closing = false;
  const shared: ProxyShared = {
    options,
    throttle: new LoginThrottle(limits),
    acquireAccount: (name) => perAccount.acquire(name),
    releaseAccount: (name) => perAccount.release(name),
    logger,
    metrics: options.metrics,
    audit: options.audit,
  };

  function refuse(socket: Socket, kind: ListenerKind, limit: string, text: string): void {
    options.metrics?.connectionsRefused.inc({ limit });
    if (kind === 'starttls') socket.end(`-ERR [SYS/TEMP] ${text}\r\n`);
    else socket.destroy();
    setTimeout(() => socket.destroy(), 2_000).unref();
  }

  function onConnection(socket: Socket, kind: ListenerKind, loopback: boolean): void {
    socket.on('error', () => {});
    if (closing) {
      socket.destroy();
      return;
    }
    const ip = socket.remoteAddress ?? 'unknown';
    if (sessions.size >= limits.maxConnections) {
      refuse(socket, kind, 'total', 'Too many connections; try again later.');
      return;
    }
    if (!perIp.acquire(ip)) {
      refuse(socket, kind, 'ip', 'Too many connections from your address.');
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const start = (stream: Socket, secure: boolean) => {
      const session = new ProxySession(stream, shared, tls, { kind, loopback }, secure);
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
    const secure = new TLSSocket(socket, { isServer: true, secureContext: tls!.current });
    secure.on('error', () => {});
    void waitForHandshake(secure, limits.tlsHandshakeTimeoutMs).then((ok) => {
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
      if (servers.length > 0) throw new PopgateError('ERR_PROXY_CONFIG', 'the proxy is already listening');
      if (options.tls !== undefined) tls = await TlsMaterial.load(options.tls);
      const bound: ProxyListenerAddress[] = [];
      try {
        for (const spec of options.listen) {
          const loopback = isLoopbackHost(spec.host);
          const server = createServer({ noDelay: true }, (socket) =>
            onConnection(socket, spec.kind, loopback),
          );
          servers.push(server);
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ host: spec.host, port: spec.port, backlog: 511 }, () => {
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
        throw new PopgateError('ERR_PROXY_CONFIG', `the proxy cannot listen: ${code}`, { cause: error });
      }
      addresses = bound;
      logger.info({ listeners: bound.map((a) => a.url) }, 'POP3 proxy listening');
      return bound;
    },
    async reloadTls() {
      if (tls === undefined) throw new PopgateError('ERR_PROXY_CONFIG', 'the proxy has no TLS to reload');
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
      for (const session of sessions) session.shutdown();
      await all();
      await stopped;
      logger.info({}, 'POP3 proxy stopped');
    },
  };
}
