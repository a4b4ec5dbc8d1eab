/**
 * HTTP for the OAuth client side: the endpoint policy (RFC 9700 §2.6 / architecture.md practice 8: https
 * only, `http://` only to a loopback host behind an explicit flag) and a fetch that trusts an
 * extra CA. Node's global fetch cannot take a CA per request and undici is not importable, so a
 * custom CA goes through a tiny fetch over `node:https`; oauth4webapi takes it as `customFetch`.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { OAuthError } from '../errors.ts';
import { readCappedBody } from '../internal/http-body.ts';
import { isLoopbackHost } from '../internal/loopback.ts';

export { isLoopbackHost };

/** Transport options shared by every OAuth request of one account. */
export interface OAuthHttpOptions {
  /** Allow `http://` endpoints on a loopback host (tests, local demo). Default false. */
  readonly allowInsecureHttp?: boolean;
  /** Extra CA certificate(s), PEM, trusted for the authorization server. */
  readonly ca?: string | Buffer;
  /** Per-request timeout in milliseconds. Default 30 000. */
  readonly timeoutMs?: number;
}

/** The fetch signature oauth4webapi's `customFetch` expects (a subset of WHATWG fetch). */
export type OAuthFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: unknown; signal?: AbortSignal },
) => Promise<Response>;

const MAX_BODY = 1024 * 1024;

/**
 * Checks one OAuth endpoint against the policy and returns it parsed. `what` names the endpoint
 * in the error (e.g. `token endpoint`).
 */
export function checkEndpoint(value: string, what: string, options: OAuthHttpOptions = {}): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OAuthError('ERR_OAUTH_INSECURE_ENDPOINT', `the ${what} is not a valid URL`);
  }
  if (url.username || url.password) {
    throw new OAuthError('ERR_OAUTH_INSECURE_ENDPOINT', `the ${what} must not carry credentials`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) {
    if (options.allowInsecureHttp) return url;
    throw new OAuthError(
      'ERR_OAUTH_INSECURE_ENDPOINT',
      `the ${what} ${url.origin} is plain http; it is allowed only on loopback with allow_insecure_http = true (tests and local development)`,
    );
  }
  throw new OAuthError(
    'ERR_OAUTH_INSECURE_ENDPOINT',
    `the ${what} ${url.protocol}//${url.host} must use https`,
  );
}

/**
 * A fetch for oauth4webapi. With a CA it is a small client over node:https (no redirects are
 * followed: oauth4webapi asks for `redirect: 'manual'`); without one it is the global fetch.
 * Bodies are capped at 1 MiB.
 */
export function createOAuthFetch(options: OAuthHttpOptions = {}): OAuthFetch {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ca = options.ca;
  if (ca === undefined) {
    return (url, init) => {
      const signal = init.signal
        ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs);
      const request: RequestInit = { method: init.method, headers: init.headers, redirect: 'manual', signal };
      if (init.body !== undefined && init.body !== null)
        request.body = init.body as NonNullable<RequestInit['body']>;
      return fetch(url, request).then((response) => capped(response, new URL(url).origin));
    };
  }
  return (url, init) => nodeFetch(url, init, ca, timeoutMs);
}

/** The response with its body read up to MAX_BODY octets; a larger body is an error. */
async function capped(response: Response, origin: string): Promise<Response> {
  if (response.body === null) return response;
  const body = await readCappedBody(response.body, MAX_BODY, () => tooLarge(origin));
  return bufferedResponse(body, response.status, response.statusText, response.headers);
}

function tooLarge(origin: string): TypeError {
  return new TypeError(`response from ${origin} exceeds ${MAX_BODY} bytes`);
}

function bufferedResponse(body: Buffer, status: number, statusText: string, headers: Headers): Response {
  const noBody = status === 204 || status === 304;
  return new Response(noBody ? null : body, { status, statusText, headers });
}

function nodeFetch(
  url: string,
  init: Parameters<OAuthFetch>[1],
  ca: string | Buffer,
  timeoutMs: number,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const target = new URL(url);
    const body = serializeBody(init.body);
    const headers: Record<string, string> = { ...init.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    const requestFn = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = requestFn(
      target,
      {
        method: init.method,
        headers,
        ...(target.protocol === 'https:' ? { ca, rejectUnauthorized: true } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
          else if (value !== undefined) responseHeaders.set(name, value);
        }
        readCappedBody(res, MAX_BODY, () => tooLarge(target.origin)).then(
          (data) =>
            resolve(bufferedResponse(data, res.statusCode ?? 502, res.statusMessage ?? '', responseHeaders)),
          reject,
        );
      },
    );
    req.on('timeout', () => req.destroy(new TypeError(`request to ${target.origin} timed out`)));
    req.on('error', reject);
    if (init.signal) {
      if (init.signal.aborted) req.destroy(new TypeError('request aborted'));
      else
        init.signal.addEventListener('abort', () => req.destroy(new TypeError('request aborted')), {
          once: true,
        });
    }
    req.end(body);
  });
}

function serializeBody(body: unknown): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new TypeError('unsupported request body type');
}

/**
 * Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3), or
 * undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}
