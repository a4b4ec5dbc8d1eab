/**
 * popgate/observability: what the server's options take for logs, audit and metrics, so an
 * embedder can build them: a {@link Logger} (pino fits it as is), an {@link AuditSink}, and
 * {@link ServerMetrics} on a prom-client registry with the listener that serves `/metrics`.
 * The diagnostics channel names every part publishes on are listed too (docs/diagnostics.md).
 */

export {
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsChannelName,
  type DiagnosticsChannelSpec,
} from '../diagnostics.ts';
export {
  AUDIT_CHANNEL,
  type AuditEvent,
  type AuditSink,
  createAuditSink,
  type LoginFailEvent,
  type LoginOkEvent,
  type LogoutEvent,
} from './audit.ts';
export { childLogger, type Logger, silentLogger } from './logger.ts';
export {
  createServerMetrics,
  type MetricsListener,
  type ServerMetrics,
  startMetricsListener,
} from './metrics.ts';
