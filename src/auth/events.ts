/**
 * Metrics hooks of the token validator. Every event goes to the optional `onEvent` callback and
 * to the `popgate:auth` diagnostics channel, so the server can feed prom-client (validation
 * latency, cache hit rate, JWKS refreshes) without the library depending on it. No event field
 * ever holds a token, part of a token, or a client secret.
 */
import { channel } from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS } from '../diagnostics.ts';
import type { ErrorCode } from '../errors.ts';

/** Name of the diagnostics channel the validator publishes {@link AuthEvent}s on. */
export const AUTH_CHANNEL = DIAGNOSTICS_CHANNELS.auth.name;

/** One validation finished (successfully or not). */
export interface ValidationEvent {
  readonly type: 'validation';
  /** The configured issuer that handled the token, when one was chosen. */
  readonly issuer: string | undefined;
  readonly method: 'jwt' | 'introspection' | 'unknown';
  /** `ok`; `refused` (answer [AUTH]); `unavailable` (answer [SYS/TEMP]). */
  readonly result: 'ok' | 'refused' | 'unavailable';
  readonly code: ErrorCode | undefined;
  readonly durationMs: number;
  /** For introspection: whether the answer came from the cache. */
  readonly cache: 'hit' | 'miss' | undefined;
}

/** An introspection cache lookup. */
export interface CacheEvent {
  readonly type: 'cache';
  readonly issuer: string;
  readonly outcome: 'hit' | 'miss';
}

/** A JWKS document was fetched (startup, unknown `kid` after the cooldown, or max age). */
export interface JwksFetchEvent {
  readonly type: 'jwks-fetch';
  readonly issuer: string;
  readonly source: 'url' | 'file';
  readonly outcome: 'ok' | 'error';
  readonly durationMs: number;
}

/** An authorization-server metadata document was fetched (RFC 8414 / OIDC discovery). */
export interface DiscoveryEvent {
  readonly type: 'discovery';
  readonly issuer: string;
  readonly outcome: 'ok' | 'error';
  readonly durationMs: number;
}

/** An introspection request (RFC 7662) went to the authorization server. */
export interface IntrospectionEvent {
  readonly type: 'introspection';
  readonly issuer: string;
  readonly outcome: 'active' | 'inactive' | 'error';
  readonly status: number | undefined;
  readonly durationMs: number;
}

export type AuthEvent = ValidationEvent | CacheEvent | JwksFetchEvent | DiscoveryEvent | IntrospectionEvent;

export type AuthEventListener = (event: AuthEvent) => void;

const authChannel = channel(AUTH_CHANNEL);

/** Returns the emitter the validator's parts share. A throwing listener never breaks a login. */
export function createEmitter(listener: AuthEventListener | undefined): (event: AuthEvent) => void {
  return (event) => {
    if (listener) {
      try {
        listener(event);
      } catch {
        // Metrics must not change the outcome of a login.
      }
    }
    if (authChannel.hasSubscribers) authChannel.publish(event);
  };
}

/** Milliseconds since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}
