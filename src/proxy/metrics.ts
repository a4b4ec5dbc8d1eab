/**
 * Prometheus metrics of the proxy (prom-client), `popgate_proxy_*`, on their own registry; the
 * server's listener (`startMetricsListener`) serves them with `/healthz`. Label values are fixed
 * vocabularies, never user input (no account names: they are the operator's, but unbounded).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface ProxyMetrics {
  readonly registry: Registry;
  /** Local sessions open now, by listener kind. */
  readonly sessions: Gauge<'listener'>;
  /** Local sessions accepted since start. */
  readonly sessionsTotal: Counter<'listener'>;
  /** Connections or logins refused by a limit (`total`, `ip`, `account`). */
  readonly connectionsRefused: Counter<'limit'>;
  /** Local logins by result (`ok`, `fail`, `temp`, `reauth`) and mechanism (`USER`, `PLAIN`). */
  readonly logins: Counter<'result' | 'mechanism'>;
  /** Upstream logins by result (`ok`, `auth`, `temp`, `reauth`, `in-use`, `login-delay`). */
  readonly upstreamLogins: Counter<'result'>;
  /** Upstream sessions open now. */
  readonly upstreamSessions: Gauge;
  /** Seconds from the local password check to the upstream's `+OK`. */
  readonly upstreamLoginSeconds: Histogram;
  /** Message octets relayed to local clients (RETR, TOP; after dot-stuffing). */
  readonly bytesOut: Counter;
  /** Relayed commands by verb. */
  readonly commands: Counter<'verb'>;
}

export function createProxyMetrics(
  options: { registry?: Registry; defaultMetrics?: boolean } = {},
): ProxyMetrics {
  const registry = options.registry ?? new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'popgate_' });
  const registers = [registry];
  return {
    registry,
    sessions: new Gauge({
      name: 'popgate_proxy_sessions',
      help: 'Local proxy sessions open now',
      labelNames: ['listener'],
      registers,
    }),
    sessionsTotal: new Counter({
      name: 'popgate_proxy_sessions_total',
      help: 'Local proxy sessions accepted',
      labelNames: ['listener'],
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'popgate_proxy_connections_refused_total',
      help: 'Connections or logins refused by a limit',
      labelNames: ['limit'],
      registers,
    }),
    logins: new Counter({
      name: 'popgate_proxy_logins_total',
      help: 'Local logins by result',
      labelNames: ['result', 'mechanism'],
      registers,
    }),
    upstreamLogins: new Counter({
      name: 'popgate_proxy_upstream_logins_total',
      help: 'Upstream logins by result',
      labelNames: ['result'],
      registers,
    }),
    upstreamSessions: new Gauge({
      name: 'popgate_proxy_upstream_sessions',
      help: 'Upstream sessions open now',
      registers,
    }),
    upstreamLoginSeconds: new Histogram({
      name: 'popgate_proxy_upstream_login_seconds',
      help: 'Upstream connect and login latency',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    bytesOut: new Counter({
      name: 'popgate_proxy_message_bytes_out_total',
      help: 'Message octets relayed to local clients',
      registers,
    }),
    commands: new Counter({
      name: 'popgate_proxy_commands_total',
      help: 'Relayed commands by verb',
      labelNames: ['verb'],
      registers,
    }),
  };
}
