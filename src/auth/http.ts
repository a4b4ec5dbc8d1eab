/**
 * The validator's small HTTP client for discovery and introspection: global fetch with a timeout,
 * no redirects (a redirect is an error, not something to follow with credentials), a cap on the
 * response size, and JSON parsing. Failures are {@link HttpFailure}s, which the callers turn into
 * `ERR_AUTH_UNAVAILABLE` (the identity provider is unusable, not the token bad).
 */
import { readCappedBody } from '../internal/http-body.ts';

/** Upper bound on a metadata, JWKS or introspection response body. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Why an HTTP exchange with the identity provider failed. Never carries a request body. */
export class HttpFailure extends Error {
  readonly status: number | undefined;

  constructor(message: string, status?: number, cause?: unknown) {
    super(message);
    this.name = 'HttpFailure';
    this.status = status;
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

export interface JsonRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  /** A form body (application/x-www-form-urlencoded). */
  readonly form?: URLSearchParams;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

export interface JsonResponse {
  readonly status: number;
  readonly body: unknown;
}

/**
 * Sends the request and parses a JSON answer of any status. Network errors, timeouts, redirects,
 * oversize or non-JSON bodies throw {@link HttpFailure}.
 */
export async function requestJson(url: URL, request: JsonRequest): Promise<JsonResponse> {
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
  if (request.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      ...(request.form ? { body: request.form.toString() } : {}),
      redirect: 'manual',
      signal,
    });
  } catch (cause) {
    const timedOut = timeout.aborted;
    throw new HttpFailure(
      timedOut ? `no answer within ${request.timeoutMs} ms` : 'request failed',
      undefined,
      cause,
    );
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel().catch(() => {});
    throw new HttpFailure('the server answered with a redirect, which is not followed', response.status);
  }
  let text: string;
  try {
    const body = await readCappedBody(
      response.body,
      MAX_RESPONSE_BYTES,
      () => new HttpFailure(`response larger than ${MAX_RESPONSE_BYTES} bytes`, response.status),
    );
    text = body.toString('utf8');
  } catch (cause) {
    if (cause instanceof HttpFailure) throw cause;
    throw new HttpFailure('reading the response failed', response.status, cause);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new HttpFailure('the response is not JSON', response.status, cause);
  }
  return { status: response.status, body };
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
