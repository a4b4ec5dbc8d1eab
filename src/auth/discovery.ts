/**
 * Issuer metadata (RFC 8414 section 3, OpenID Connect Discovery 1.0 section 4) for the validator:
 * where the keys (`jwks_uri`) and the introspection endpoint are. Fetched lazily, shared by
 * concurrent logins (single flight), kept for `discoveryMaxAgeSeconds`, and reused stale when a
 * refetch fails. The document's `issuer` must equal the configured issuer exactly (RFC 8414
 * section 3.3), which stops a metadata mix-up from pointing us at someone else's keys.
 */
import { TokenValidationError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { AuthEvent } from './events.ts';
import { since } from './events.ts';
import { failureFields, HttpFailure, type IssuerHttp, isJsonObject } from './http.ts';
import { endpointUrl, type ResolvedIssuer, type ResolvedValidatorConfig } from './options.ts';

export interface IssuerMetadata {
  readonly jwksUri: URL | undefined;
  readonly introspectionEndpoint: URL | undefined;
}

/** After a failed fetch with nothing cached, logins fail fast for this long instead of piling up. */
const FAILURE_BACKOFF_MS = 2000;

/** The candidate metadata URLs: OIDC's, then RFC 8414's (well-known inserted before the path). */
export function metadataUrls(issuer: ResolvedIssuer): URL[] {
  if (issuer.discoveryUrl) return [issuer.discoveryUrl];
  const url = new URL(issuer.issuer);
  const path = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return [
    new URL(`${url.origin}${path}/.well-known/openid-configuration`),
    new URL(`${url.origin}/.well-known/oauth-authorization-server${path}`),
  ];
}

export class MetadataResolver {
  readonly #issuer: ResolvedIssuer;
  readonly #config: ResolvedValidatorConfig;
  readonly #emit: (event: AuthEvent) => void;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #http: IssuerHttp;
  #cached: { metadata: IssuerMetadata; at: number } | undefined;
  #pending: Promise<IssuerMetadata> | undefined;
  #failedAt = Number.NEGATIVE_INFINITY;

  constructor(
    issuer: ResolvedIssuer,
    config: ResolvedValidatorConfig,
    emit: (event: AuthEvent) => void,
    logger: Logger,
    now: () => number,
    http: IssuerHttp,
  ) {
    this.#http = http;
    this.#issuer = issuer;
    this.#config = config;
    this.#emit = emit;
    this.#logger = logger;
    this.#now = now;
  }

  /** The metadata, fetching it when absent or older than the configured maximum age. */
  async get(): Promise<IssuerMetadata> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached && now - cached.at < this.#config.discoveryMaxAgeSeconds * 1000) return cached.metadata;
    if (!cached && now - this.#failedAt < FAILURE_BACKOFF_MS) throw this.#unavailable();
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    try {
      return await this.#pending;
    } catch (error) {
      if (cached) {
        this.#logger.warn(
          { issuer: this.#issuer.issuer },
          'issuer metadata refresh failed; using the previous copy',
        );
        return cached.metadata;
      }
      throw error;
    }
  }

  #unavailable(cause?: unknown): TokenValidationError {
    return new TokenValidationError(
      'ERR_AUTH_UNAVAILABLE',
      `the metadata of issuer ${this.#issuer.issuer} could not be loaded; try again later`,
      { cause, temporary: true },
    );
  }

  async #fetch(): Promise<IssuerMetadata> {
    const start = performance.now();
    try {
      const metadata = await this.#fetchFirst();
      this.#cached = { metadata, at: this.#now() };
      this.#emit({ type: 'discovery', issuer: this.#issuer.issuer, outcome: 'ok', durationMs: since(start) });
      return metadata;
    } catch (error) {
      this.#failedAt = this.#now();
      this.#emit({
        type: 'discovery',
        issuer: this.#issuer.issuer,
        outcome: 'error',
        durationMs: since(start),
      });
      this.#logger.error(
        { issuer: this.#issuer.issuer, ...failureFields(error) },
        'issuer metadata could not be loaded',
      );
      throw this.#unavailable(error);
    }
  }

  async #fetchFirst(): Promise<IssuerMetadata> {
    const urls = metadataUrls(this.#issuer);
    let lastStatus: number | undefined;
    for (const url of urls) {
      const response = await this.#http.json(url, { method: 'GET', timeoutMs: this.#config.httpTimeoutMs });
      if (response.status === 404 && urls.length > 1) {
        lastStatus = 404;
        continue;
      }
      if (response.status !== 200)
        throw new HttpFailure(`metadata answered HTTP ${response.status}`, response.status);
      return this.#parse(response.body);
    }
    throw new HttpFailure('no metadata document at the well-known URLs', lastStatus);
  }

  #parse(body: unknown): IssuerMetadata {
    if (!isJsonObject(body)) throw new HttpFailure('metadata is not a JSON object');
    if (body.issuer !== this.#issuer.issuer) {
      throw new HttpFailure('metadata names another issuer (RFC 8414 section 3.3)');
    }
    const allow = this.#config.allowInsecureLoopback;
    const url = (name: string): URL | undefined => {
      const value = body[name];
      if (value === undefined) return undefined;
      try {
        return endpointUrl(value, name, allow);
      } catch (cause) {
        throw new HttpFailure(`metadata field ${name} is not an acceptable URL`, undefined, cause);
      }
    };
    return Object.freeze({ jwksUri: url('jwks_uri'), introspectionEndpoint: url('introspection_endpoint') });
  }
}
