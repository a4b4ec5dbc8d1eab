/**
 * Audit events of the POP3 server: login success and failure, logout with per-session counts.
 * They go to a structured logger (pino in the CLI) under `audit: true` and to the
 * `popgate:server:audit` diagnostics channel. No event field ever holds a token or part of one:
 * the types below only admit identities, reasons and counts.
 */
import { channel } from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS } from '../diagnostics.ts';
import type { Logger } from './logger.ts';

export const AUDIT_CHANNEL = DIAGNOSTICS_CHANNELS.serverAudit.name;

interface AuditBase {
  /** Session id (random, per connection). */
  readonly session: string;
  readonly remoteAddress: string;
}

/** A login attempt that succeeded. */
export interface LoginOkEvent extends AuditBase {
  readonly event: 'login.ok';
  readonly mechanism: string;
  readonly user: string;
  readonly issuer: string | undefined;
  readonly clientId: string | undefined;
  readonly subject: string | undefined;
  readonly method: string;
}

/** A login attempt that failed; `temporary` marks identity-provider outages ([SYS/TEMP]). */
export interface LoginFailEvent extends AuditBase {
  readonly event: 'login.fail';
  readonly mechanism: string;
  /** The SASL user the client claimed (capped), if any. */
  readonly user: string | undefined;
  /** A stable error code (`ERR_AUTH_*`, `ERR_SASL_*`, ...). */
  readonly reason: string;
  readonly temporary: boolean;
  readonly issuer: string | undefined;
}

/** The end of a session, with what it did. */
export interface LogoutEvent extends AuditBase {
  readonly event: 'logout';
  readonly user: string | undefined;
  /** `quit`, `dropped`, `idle`, `expired`, `shutdown`, `limit`, `error`. */
  readonly how: string;
  readonly commands: number;
  readonly retr: number;
  readonly top: number;
  readonly dele: number;
  readonly bytesOut: number;
  readonly deleted: number;
  readonly durationMs: number;
}

export type AuditEvent = LoginOkEvent | LoginFailEvent | LogoutEvent;

/** Where audit events go. */
export interface AuditSink {
  emit(event: AuditEvent): void;
}

const auditChannel = channel(AUDIT_CHANNEL);

/** An audit sink writing `info` (ok, logout) and `warn` (failures) lines to `logger`. */
export function createAuditSink(logger: Logger): AuditSink {
  return {
    emit(event) {
      if (auditChannel.hasSubscribers) auditChannel.publish(event);
      const fields = { audit: true, ...event };
      if (event.event === 'login.fail') logger.warn(fields, 'login failed');
      else logger.info(fields, event.event === 'login.ok' ? 'login' : 'logout');
    },
  };
}

/** Caps untrusted text placed in an audit event (architecture.md R13): 256 chars, control chars removed. */
export function capForAudit(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 256);
}
