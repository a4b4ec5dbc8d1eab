/**
 * The validator's small HTTP client for discovery, JWKS and introspection, one per issuer: over
 * `node:https` so each issuer can trust its own CA (global fetch cannot take one per request), with
 * a timeout, no redirects (a redirect is an error, not something to follow with credentials), a
 * cap on the response size for every body (JWKS included), and the TLS identity check of
 * `src/internal/tls-identity.ts` (IP-literal issuers checked by OpenSSL, never sent as SNI).
 * Failures are {@link HttpFailure}s saying what went wrong and, for TLS, what to do; the callers
 * turn them into `ERR_AUTH_UNAVAILABLE` (the identity provider is unusable, not the token bad).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readCappedBody } from '../internal/http-body.ts';
import { classifyTlsFailure } from '../internal/tls-errors.ts';
import { checkServerIdentityStrict, serverNameFor } from '../internal/tls-identity.ts';

/** Upper bound on a metadata, JWKS or introspection response body. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Why an HTTP exchange with the identity provider failed. Never carries a request body. */
export class HttpFailure extends Error {
  readonly status: number | undefined;
  /** What the operator can do about it, when known (e.g. trust the issuer's CA). */
  readonly hint: string | undefined;

  constructor(message: string, status?: number, cause?: unknown, hint?: string) {
    super(message);
    this.name = 'HttpFailure';
    this.status = status;
    this.hint = hint;
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

const SET_CA =
  "trust the CA that signed it: the issuer's ca option (popgate serve: ca in [[server.issuers]] or --issuer-ca FILE)";

/** A network or TLS error of a request as an HttpFailure naming the reason and the fix. */
export function networkFailure(error: unknown, url: URL): HttpFailure {
  const code = (error as { code?: unknown } | undefined)?.code;
  const c = typeof code === 'string' ? code : undefined;
  const host = url.host;
  // What a TLS failure means is decided in one place (internal/tls-errors.ts).
  const tls = classifyTlsFailure(error);
  if (tls.kind === 'untrusted') {
    return new HttpFailure(`the issuer's certificate is not trusted (${tls.code})`, undefined, error, SET_CA);
  }
  if (tls.kind === 'expired') {
    return new HttpFailure(
      `the certificate of ${host} ${tls.code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'} (${tls.code})`,
      undefined,
      error,
      'renew the identity provider certificate (or check this machine clock)',
    );
  }
  if (tls.kind === 'name') {
    return new HttpFailure(
      `the issuer's certificate does not name ${url.hostname} (${tls.code})`,
      undefined,
      error,
      'use the host name the certificate was issued for in the issuer URL, or reissue the certificate',
    );
  }
  if (c === 'ECONNREFUSED') return new HttpFailure(`connection to ${host} refused (${c})`, undefined, error);
  if (c === 'ENOTFOUND' || c === 'EAI_AGAIN') {
    return new HttpFailure(`the host name ${url.hostname} did not resolve (${c})`, undefined, error);
  }
  if (c !== undefined && (c.startsWith('ERR_SSL_') || c === 'EPROTO' || c.startsWith('ERR_TLS_'))) {
    return new HttpFailure(
      `the TLS handshake with ${host} failed (${c})`,
      undefined,
      error,
      'check that the URL is https to a TLS port',
    );
  }
  return new HttpFailure(`request to ${host} failed${c ? ` (${c})` : ''}`, undefined, error);
}

/** The first HttpFailure in `error`'s cause chain, for log lines (reason and hint). */
export function failureOf(error: unknown): HttpFailure | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (current instanceof HttpFailure) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Log fields for a failed request: `reason` (the HttpFailure's, else the innermost error's
 * message, e.g. jose's) and `hint` when there is one.
 */
export function failureFields(error: unknown): { reason: string; hint?: string } {
  const failure = failureOf(error);
  if (failure) return { reason: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) };
  let innermost: unknown = error;
  for (let depth = 0; depth < 8; depth++) {
    const cause = (innermost as { cause?: unknown } | undefined)?.cause;
    if (!(cause instanceof Error)) break;
    innermost = cause;
  }
  return { reason: innermost instanceof Error ? innermost.message : String(innermost) };
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  /** A form body (application/x-www-form-urlencoded). */
  readonly form?: URLSearchParams;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

export interface JsonResponse {
  readonly status: number;
  readonly body: unknown;
}

function headersOf(message: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(message.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

/** One issuer's HTTP client: its own connection pool, trusting its CA when it has one. */
export class IssuerHttp {
  readonly #https: HttpsAgent;
  readonly #http = new HttpAgent({ keepAlive: true });

  constructor(ca: string | undefined) {
    this.#https = new HttpsAgent({
      keepAlive: true,
      ...(ca !== undefined ? { ca } : {}),
      checkServerIdentity: checkServerIdentityStrict,
    });
  }

  /**
   * Sends the request and reads the whole answer, at most {@link MAX_RESPONSE_BYTES}. Network and
   * TLS errors, timeouts, redirects and oversize bodies throw {@link HttpFailure}.
   */
  async request(url: URL, request: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.#send(url, request);
    } catch (error) {
      // A pooled connection the server closed while it sat idle fails at once with ECONNRESET:
      // the request never reached it, so one retry on a fresh connection is safe (Node's advice).
      if (!(error instanceof StaleConnection)) throw error;
      return this.#send(url, request);
    }
  }

  #send(url: URL, request: HttpRequest): Promise<HttpResponse> {
    const timeout = AbortSignal.timeout(request.timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    const body = request.form === undefined ? undefined : Buffer.from(request.form.toString());
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(body.length);
    }
    const https = url.protocol === 'https:';
    return new Promise<HttpResponse>((resolve, reject) => {
      const aborted = () =>
        new HttpFailure(
          timeout.aborted ? `no answer within ${request.timeoutMs} ms` : 'the request was abandoned',
          undefined,
          signal.reason,
        );
      if (signal.aborted) {
        reject(aborted());
        return;
      }
      const req = (https ? httpsRequest : httpRequest)(url, {
        method: request.method,
        headers,
        agent: https ? this.#https : this.#http,
        ...(https
          ? {
              servername: serverNameFor(url.hostname) ?? '',
              checkServerIdentity: checkServerIdentityStrict,
            }
          : {}),
      });
      let failed = false;
      let responded = false;
      const fail = (failure: HttpFailure) => {
        if (failed) return;
        failed = true;
        signal.removeEventListener('abort', onAbort);
        reject(failure);
      };
      const onAbort = () => {
        const failure = aborted();
        fail(failure);
        req.destroy(failure);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (error) => {
        if (req.reusedSocket && (error as { code?: unknown }).code === 'ECONNRESET' && !responded) {
          fail(new StaleConnection(networkFailure(error, url)));
          return;
        }
        fail(error instanceof HttpFailure ? error : networkFailure(error, url));
      });
      req.on('response', (res) => {
        responded = true;
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          res.resume();
          fail(new HttpFailure('the server answered with a redirect, which is not followed', status));
          req.destroy();
          return;
        }
        readCappedBody(
          res,
          MAX_RESPONSE_BYTES,
          () => new HttpFailure(`response larger than ${MAX_RESPONSE_BYTES} bytes`, status),
        ).then(
          (data) => {
            if (failed) return;
            failed = true;
            signal.removeEventListener('abort', onAbort);
            resolve({ status, headers: headersOf(res), body: data });
          },
          (error: unknown) => {
            fail(
              error instanceof HttpFailure
                ? error
                : new HttpFailure('reading the response failed', status, error),
            );
            req.destroy();
          },
        );
      });
      req.end(body);
    });
  }

  /** {@link request}, then the body parsed as JSON (of any status). */
  async json(url: URL, request: HttpRequest): Promise<JsonResponse> {
    const response = await this.request(url, request);
    let body: unknown;
    try {
      body = JSON.parse(response.body.toString('utf8'));
    } catch (cause) {
      throw new HttpFailure('the response is not JSON', response.status, cause);
    }
    return { status: response.status, body };
  }

  /**
   * A fetch for jose's `createRemoteJWKSet` (its `customFetch`): the same client, so a JWKS body is
   * capped and the issuer's CA trusted, answered as a WHATWG Response that is already in memory.
   */
  fetch(timeoutMs: number): (url: string, init: RequestInit) => Promise<Response> {
    return async (url, init) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      const response = await this.request(new URL(url), {
        method: 'GET',
        headers,
        timeoutMs,
        signal: init.signal ?? undefined,
      });
      const empty = response.status === 204 || response.status === 304;
      return new Response(empty ? null : response.body, {
        status: response.status,
        headers: response.headers,
      });
    };
  }

  /** Closes idle pooled connections. */
  close(): void {
    this.#https.destroy();
    this.#http.destroy();
  }
}

/** A request lost on a pooled connection the server had closed; retried once. */
class StaleConnection extends HttpFailure {
  constructor(failure: HttpFailure) {
    super(failure.message, undefined, (failure as { cause?: unknown }).cause, failure.hint);
  }
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
