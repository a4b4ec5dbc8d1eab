/**
 * Opaque access tokens through token introspection (RFC 7662): a POST to the issuer's
 * introspection endpoint, the server authenticating with its client credentials
 * (`client_secret_basic` or `client_secret_post`, RFC 6749 section 2.3.1), `active` must be
 * `true`, then the same checks as a JWT where the answer carries the fields (`iss`, `aud`, `exp`,
 * `nbf`, `token_type`, `cnf`).
 *
 * Answers are cached in a bounded LRU keyed by an HMAC of the token under a per-process random key
 * (the token itself is never a map key and never logged), for no longer than the configured TTL
 * and never past the token's `exp`. Concurrent logins with the same token share one request.
 * Outages, timeouts and error answers are `ERR_AUTH_UNAVAILABLE` (temporary, never cached).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { TokenValidationError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { audienceMatches, refuseSenderConstrained, validatedToken } from './claims.ts';
import type { MetadataResolver } from './discovery.ts';
import { type AuthEvent, since } from './events.ts';
import { failureFields, HttpFailure, type IssuerHttp, isJsonObject } from './http.ts';
import { ExpiringLru } from './lru.ts';
import type { ResolvedIssuer, ResolvedValidatorConfig } from './options.ts';
import type { ValidatedToken } from './types.ts';

/** A cached verdict: the validated token, or the refusal to repeat (never an outage). */
type Verdict =
  | { readonly ok: true; readonly token: ValidatedToken }
  | { readonly ok: false; readonly code: TokenValidationError['code']; readonly message: string };

export interface IntrospectionResult {
  readonly token: ValidatedToken;
  readonly cache: 'hit' | 'miss';
}

export interface IntrospectionContext {
  readonly config: ResolvedValidatorConfig;
  readonly emit: (event: AuthEvent) => void;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Form-encodes a client credential for HTTP Basic as RFC 6749 section 2.3.1 requires. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function unavailable(issuer: string, cause?: unknown): TokenValidationError {
  return new TokenValidationError(
    'ERR_AUTH_UNAVAILABLE',
    `token introspection at issuer ${issuer} failed; try again later`,
    { cause, temporary: true },
  );
}

/** Waits for `promise` unless `signal` aborts first (the login was abandoned). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, issuer: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(unavailable(issuer, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(unavailable(issuer, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** The introspection cache and request logic shared by every introspection issuer. */
export class Introspector {
  readonly #context: IntrospectionContext;
  readonly #cache: ExpiringLru<Verdict>;
  readonly #pending = new Map<string, Promise<Verdict>>();
  readonly #hashKey = randomBytes(32);

  constructor(context: IntrospectionContext) {
    this.#context = context;
    this.#cache = new ExpiringLru(context.config.introspectionCache.maxEntries);
  }

  /** Number of cached answers (for tests and diagnostics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  #key(issuer: ResolvedIssuer, token: string): string {
    return createHmac('sha256', this.#hashKey)
      .update(issuer.issuer)
      .update('\0')
      .update(token)
      .digest('base64url');
  }

  /**
   * Validates `token` at `issuer`; resolves with the token, rejects with a refusal or an
   * `ERR_AUTH_UNAVAILABLE`.
   */
  async validate(
    token: string,
    issuer: ResolvedIssuer,
    metadata: MetadataResolver,
    http: IssuerHttp,
    signal: AbortSignal | undefined,
  ): Promise<IntrospectionResult> {
    const { emit, now } = this.#context;
    const key = this.#key(issuer, token);
    const cached = this.#cache.get(key, now());
    emit({ type: 'cache', issuer: issuer.issuer, outcome: cached ? 'hit' : 'miss' });
    let verdict: Verdict;
    let cache: 'hit' | 'miss' = 'hit';
    if (cached) {
      verdict = cached;
    } else {
      cache = 'miss';
      let pending = this.#pending.get(key);
      if (!pending) {
        // Shared by every concurrent login with this token, so no one caller's signal aborts it.
        pending = this.#introspect(token, issuer, metadata, http, key).finally(() =>
          this.#pending.delete(key),
        );
        this.#pending.set(key, pending);
      }
      verdict = await abortable(pending, signal, issuer.issuer);
    }
    if (!verdict.ok) throw new TokenValidationError(verdict.code, verdict.message);
    return { token: verdict.token, cache };
  }

  async #introspect(
    token: string,
    issuer: ResolvedIssuer,
    metadata: MetadataResolver,
    http: IssuerHttp,
    key: string,
  ): Promise<Verdict> {
    const { config, emit, logger, now } = this.#context;
    const client = issuer.introspection!;
    const endpoint = client.endpoint ?? (await metadata.get()).introspectionEndpoint;
    if (!endpoint)
      throw unavailable(issuer.issuer, new Error('the issuer metadata has no introspection_endpoint'));
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const headers: Record<string, string> = {};
    if (client.clientAuth === 'client_secret_post') {
      form.set('client_id', client.clientId);
      form.set('client_secret', client.clientSecret.reveal());
    } else {
      const credentials = `${formEncode(client.clientId)}:${formEncode(client.clientSecret.reveal())}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const start = performance.now();
    let status: number | undefined;
    let body: Record<string, unknown>;
    try {
      const response = await http.json(endpoint, {
        method: 'POST',
        headers,
        form,
        timeoutMs: config.httpTimeoutMs,
      });
      status = response.status;
      if (status !== 200) throw new HttpFailure(`introspection answered HTTP ${status}`, status);
      if (!isJsonObject(response.body) || typeof response.body.active !== 'boolean') {
        throw new HttpFailure('introspection answer has no boolean active member', status);
      }
      body = response.body;
    } catch (error) {
      emit({
        type: 'introspection',
        issuer: issuer.issuer,
        outcome: 'error',
        status,
        durationMs: since(start),
      });
      logger.error(
        {
          issuer: issuer.issuer,
          status,
          ...failureFields(error),
          ...(status === 401 || status === 403 ? { hint: 'check the introspection client credentials' } : {}),
        },
        'token introspection failed',
      );
      throw unavailable(issuer.issuer, error);
    }
    emit({
      type: 'introspection',
      issuer: issuer.issuer,
      outcome: body.active ? 'active' : 'inactive',
      status,
      durationMs: since(start),
    });
    const verdict = this.#judge(body, issuer, now());
    const nowMs = now();
    const { ttlSeconds, inactiveTtlSeconds } = config.introspectionCache;
    let until = nowMs + (verdict.ok ? ttlSeconds : inactiveTtlSeconds) * 1000;
    const exp = verdict.ok ? verdict.token.expiresAt?.getTime() : undefined;
    if (exp !== undefined) until = Math.min(until, exp);
    this.#cache.set(key, verdict, until, nowMs);
    return verdict;
  }

  /** Checks an introspection answer; refusals become cacheable verdicts. */
  #judge(body: Record<string, unknown>, issuer: ResolvedIssuer, nowMs: number): Verdict {
    try {
      if (body.active !== true) {
        throw new TokenValidationError(
          'ERR_AUTH_INACTIVE',
          'the token is not active (revoked, expired or unknown)',
        );
      }
      if (body.iss !== undefined && body.iss !== issuer.issuer) {
        throw new TokenValidationError('ERR_AUTH_ISSUER', 'the token issuer does not match');
      }
      const tolerance = issuer.clockToleranceSeconds;
      const nowSeconds = nowMs / 1000;
      if (typeof body.exp === 'number' && body.exp + tolerance <= nowSeconds) {
        throw new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token has expired; get a new one');
      }
      if (typeof body.nbf === 'number' && body.nbf - tolerance > nowSeconds) {
        throw new TokenValidationError('ERR_AUTH_INVALID_TOKEN', 'the token is not valid yet');
      }
      if (body.token_type !== undefined) {
        const type = typeof body.token_type === 'string' ? body.token_type.toLowerCase() : '';
        if (type !== 'bearer' && type !== 'access_token') {
          throw new TokenValidationError('ERR_AUTH_TYPE', 'the token is not a bearer access token');
        }
      }
      if (issuer.requireAudience || (issuer.audiences.length > 0 && body.aud !== undefined)) {
        if (!audienceMatches(body.aud, issuer.audiences)) {
          throw new TokenValidationError(
            'ERR_AUTH_AUDIENCE',
            `the token is not meant for this server (audience must be ${issuer.audiences.join(' or ')})`,
          );
        }
      }
      refuseSenderConstrained(body);
      return { ok: true, token: validatedToken(issuer, body, 'introspection') };
    } catch (error) {
      if (!(error instanceof TokenValidationError)) throw error;
      return { ok: false, code: error.code, message: error.message };
    }
  }
}
