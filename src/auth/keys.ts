/**
 * Verification keys for one JWT issuer: a remote JWKS (configured URL or the metadata's
 * `jwks_uri`) through jose's `createRemoteJWKSet`, fetched by the issuer's own HTTP client (its
 * `customFetch`: the body capped at 1 MiB, the issuer's CA trusted; jose keeps its caching and
 * cooldown), or a local JWKS file. Both rotate without a
 * restart: an unknown `kid` triggers one refetch (remote) or reread (file) at most once per
 * cooldown, and documents are refreshed after a maximum age. jose binds the algorithm to the key
 * (key type and the JWK's `alg` must fit the header's `alg`) and never hands a public key to an
 * HMAC algorithm. Failing to obtain keys is `ERR_AUTH_UNAVAILABLE`; a token whose key is not in
 * the set is a bad token.
 */
import { readFile } from 'node:fs/promises';
import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  errors as joseErrors,
} from 'jose';
import { TokenValidationError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { MetadataResolver } from './discovery.ts';
import { type AuthEvent, since } from './events.ts';
import { failureFields, type IssuerHttp } from './http.ts';
import type { ResolvedIssuer, ResolvedValidatorConfig } from './options.ts';

export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** Errors a JWKS lookup raises because of the token, not because keys could not be obtained. */
function isTokenError(error: unknown): boolean {
  return (
    error instanceof joseErrors.JWKSNoMatchingKey ||
    error instanceof joseErrors.JWKSMultipleMatchingKeys ||
    error instanceof joseErrors.JOSENotSupported ||
    error instanceof TokenValidationError
  );
}

export interface KeySet {
  readonly resolve: KeyResolver;
  /** Loads the keys now (used by `warmUp`). */
  load(): Promise<void>;
}

interface KeySetContext {
  readonly issuer: ResolvedIssuer;
  readonly config: ResolvedValidatorConfig;
  readonly metadata: MetadataResolver;
  readonly emit: (event: AuthEvent) => void;
  readonly logger: Logger;
  readonly now: () => number;
  readonly http: IssuerHttp;
}

function unavailable(issuer: string, cause: unknown): TokenValidationError {
  return new TokenValidationError(
    'ERR_AUTH_UNAVAILABLE',
    `the signing keys of issuer ${issuer} could not be loaded; try again later`,
    { cause, temporary: true },
  );
}

function remoteKeySet(context: KeySetContext, url: URL): KeySet {
  const { issuer, config, emit, logger } = context;
  const fetchCapped = context.http.fetch(config.httpTimeoutMs);
  const fetchWithEvents = async (input: string, init: RequestInit): Promise<Response> => {
    const start = performance.now();
    try {
      const response = await fetchCapped(input, init);
      if (response.status !== 200) {
        logger.error(
          { issuer: issuer.issuer, jwksUri: url.href, reason: `JWKS answered HTTP ${response.status}` },
          'JWKS fetch failed',
        );
      }
      emit({
        type: 'jwks-fetch',
        issuer: issuer.issuer,
        source: 'url',
        outcome: response.status === 200 ? 'ok' : 'error',
        durationMs: since(start),
      });
      return response;
    } catch (error) {
      emit({
        type: 'jwks-fetch',
        issuer: issuer.issuer,
        source: 'url',
        outcome: 'error',
        durationMs: since(start),
      });
      logger.error(
        { issuer: issuer.issuer, jwksUri: url.href, ...failureFields(error) },
        'JWKS fetch failed',
      );
      throw error;
    }
  };
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: config.httpTimeoutMs,
    cooldownDuration: config.jwksCooldownSeconds * 1000,
    cacheMaxAge: config.jwksMaxAgeSeconds * 1000,
    [customFetch]: fetchWithEvents,
  });
  // When a refresh fails (the IdP is down) the keys we already had stay usable: a known key
  // still verifies. A token whose key is not among them stays an outage, not a refusal.
  let stale: { text: string; local: ReturnType<typeof createLocalJWKSet> } | undefined;
  const resolve: KeyResolver = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (isTokenError(error)) throw error;
      const previous = remote.jwks();
      if (!previous) throw error;
      const text = JSON.stringify(previous);
      if (stale?.text !== text) stale = { text, local: createLocalJWKSet(previous) };
      logger.warn({ issuer: issuer.issuer }, 'JWKS refresh failed; verifying with the keys fetched before');
      try {
        return await stale.local(header, token);
      } catch (staleError) {
        if (staleError instanceof joseErrors.JWKSMultipleMatchingKeys) throw staleError;
        throw error;
      }
    }
  };
  return { resolve, load: () => remote.reload() };
}

function fileKeySet(context: KeySetContext, path: string): KeySet {
  const { issuer, config, emit, logger, now } = context;
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let content: string | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;

  const reread = async (): Promise<void> => {
    checkedAt = now();
    const start = performance.now();
    let text: string;
    try {
      text = await readFile(path, 'utf8');
      if (text !== content) {
        const next = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
        local = next;
        content = text;
      }
      emit({
        type: 'jwks-fetch',
        issuer: issuer.issuer,
        source: 'file',
        outcome: 'ok',
        durationMs: since(start),
      });
    } catch (error) {
      emit({
        type: 'jwks-fetch',
        issuer: issuer.issuer,
        source: 'file',
        outcome: 'error',
        durationMs: since(start),
      });
      logger.error({ issuer: issuer.issuer, jwksFile: path }, 'JWKS file could not be read or parsed');
      // Mid-replacement or broken: keep serving the keys we had, if any.
      if (!local) throw unavailable(issuer.issuer, error);
    }
  };

  const resolve: KeyResolver = async (header, token) => {
    if (!local || now() - checkedAt >= config.jwksMaxAgeSeconds * 1000) await reread();
    try {
      return await local!(header, token);
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSNoMatchingKey &&
        now() - checkedAt >= config.jwksCooldownSeconds * 1000
      ) {
        await reread();
        return local!(header, token);
      }
      throw error;
    }
  };
  return { resolve, load: reread };
}

/** Builds the key set of a JWT issuer according to its key source. */
export function createKeySet(context: KeySetContext): KeySet {
  const { issuer } = context;
  const source = issuer.keys;
  let inner: KeySet;
  if (source.kind === 'file') {
    inner = fileKeySet(context, source.path);
  } else if (source.kind === 'url') {
    inner = remoteKeySet(context, source.url);
  } else {
    // Discovery: the remote set follows the metadata's jwks_uri, rebuilt if it ever changes.
    let current: { href: string; remote: KeySet } | undefined;
    const get = async () => {
      const metadata = await context.metadata.get();
      if (!metadata.jwksUri) {
        throw unavailable(issuer.issuer, new Error('the issuer metadata has no jwks_uri'));
      }
      if (current?.href !== metadata.jwksUri.href) {
        current = { href: metadata.jwksUri.href, remote: remoteKeySet(context, metadata.jwksUri) };
      }
      return current.remote;
    };
    inner = {
      resolve: async (header, token) => (await get()).resolve(header, token),
      load: async () => (await get()).load(),
    };
  }
  return {
    resolve: async (header, token) => {
      try {
        return await inner.resolve(header, token);
      } catch (error) {
        if (isTokenError(error)) throw error;
        throw unavailable(issuer.issuer, error);
      }
    },
    load: async () => {
      try {
        await inner.load();
      } catch (error) {
        if (error instanceof TokenValidationError) throw error;
        throw unavailable(issuer.issuer, error);
      }
    },
  };
}
