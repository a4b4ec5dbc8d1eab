/**
 * Prometheus metrics of the POP3 server (prom-client), on their own registry, and the small
 * HTTP listener that serves them (`/metrics`, `/healthz`), bound to loopback by default so
 * operational data is not published to the world.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Metric families the server updates. Label values are fixed vocabularies, never user input. */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Sessions open now, by listener kind. */
  readonly sessions: Gauge<'listener'>;
  /** Sessions accepted since start, by listener kind. */
  readonly sessionsTotal: Counter<'listener'>;
  /** Connections refused by a limit (`ip`, `total`, `user`). */
  readonly connectionsRefused: Counter<'limit'>;
  /** Logins by result (`ok`, `fail`, `temp`) and reason (an error code or `ok`). */
  readonly logins: Counter<'result' | 'reason' | 'mechanism'>;
  /** Octets of message data sent (RETR and TOP, after dot-stuffing). */
  readonly bytesOut: Counter;
  /** Seconds from a command line read to its answer written, by verb. */
  readonly commandSeconds: Histogram<'verb'>;
  /** Seconds spent validating a token, by method (`jwt`, `introspection`, `unknown`). */
  readonly tokenValidationSeconds: Histogram<'method' | 'result'>;
  /** Token validation cache lookups by outcome (`hit`, `miss`), reported by the validator. */
  readonly tokenCache: Counter<'outcome'>;
  /** JWKS fetches by outcome (`ok`, `error`), reported by the validator. */
  readonly jwksRefreshes: Counter<'outcome'>;
  /** Messages removed in UPDATE. */
  readonly messagesDeleted: Counter;
}

/** Creates the server's metric families on a fresh registry (or the one given). */
export function createServerMetrics(
  options: { registry?: Registry; defaultMetrics?: boolean } = {},
): ServerMetrics {
  const registry = options.registry ?? new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'popgate_' });
  const registers = [registry];
  return {
    registry,
    sessions: new Gauge({
      name: 'popgate_pop3_sessions',
      help: 'POP3 sessions open now',
      labelNames: ['listener'],
      registers,
    }),
    sessionsTotal: new Counter({
      name: 'popgate_pop3_sessions_total',
      help: 'POP3 sessions accepted',
      labelNames: ['listener'],
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'popgate_pop3_connections_refused_total',
      help: 'Connections refused by a limit',
      labelNames: ['limit'],
      registers,
    }),
    logins: new Counter({
      name: 'popgate_pop3_logins_total',
      help: 'Login attempts by result and reason',
      labelNames: ['result', 'reason', 'mechanism'],
      registers,
    }),
    bytesOut: new Counter({
      name: 'popgate_pop3_message_bytes_out_total',
      help: 'Message octets sent',
      registers,
    }),
    commandSeconds: new Histogram({
      name: 'popgate_pop3_command_seconds',
      help: 'Command latency',
      labelNames: ['verb'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    tokenValidationSeconds: new Histogram({
      name: 'popgate_token_validation_seconds',
      help: 'Token validation latency',
      labelNames: ['method', 'result'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    tokenCache: new Counter({
      name: 'popgate_token_cache_total',
      help: 'Token validation cache lookups',
      labelNames: ['outcome'],
      registers,
    }),
    jwksRefreshes: new Counter({
      name: 'popgate_jwks_refreshes_total',
      help: 'JWKS fetches',
      labelNames: ['outcome'],
      registers,
    }),
    messagesDeleted: new Counter({
      name: 'popgate_pop3_messages_deleted_total',
      help: 'Messages removed in UPDATE',
      registers,
    }),
  };
}

/** The running metrics listener. */
export interface MetricsListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text format) of any registry (the server's, the proxy's)
 * and `GET /healthz` (`ok` while `healthy()` is true, else 503). Binds 127.0.0.1 unless told
 * otherwise.
 */
export async function startMetricsListener(
  metrics: Pick<ServerMetrics, 'registry'>,
  options: { host?: string; port: number; healthy?: () => boolean },
): Promise<MetricsListener> {
  const healthy = options.healthy ?? (() => true);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unavailable\n');
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
