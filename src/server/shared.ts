/** State shared by all sessions of one server: options, guards, observability sinks. */
import type { AuditSink } from '../observability/audit.ts';
import type { Logger } from '../observability/logger.ts';
import type { ServerMetrics } from '../observability/metrics.ts';
import type { ConnectionCounter, LoginThrottle } from './limits.ts';
import type { ResolvedServerOptions } from './options.ts';
import type { CommandHandler, Pop3Verb } from './registry.ts';
import type { TlsMaterial } from './tls.ts';

export interface ServerShared {
  readonly options: ResolvedServerOptions;
  readonly registry: ReadonlyMap<Pop3Verb, CommandHandler>;
  readonly tls: TlsMaterial | undefined;
  readonly perIp: ConnectionCounter;
  readonly perUser: ConnectionCounter;
  readonly throttle: LoginThrottle;
  /** Last successful login per user (ms), for LOGIN-DELAY. */
  readonly lastLogin: Map<string, number>;
  readonly logger: Logger;
  readonly metrics: ServerMetrics | undefined;
  readonly audit: AuditSink | undefined;
  readonly now: () => number;
}
