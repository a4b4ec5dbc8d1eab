/**
 * The server's token validator: one object for every configured issuer.
 *
 * A JWT (three base64url parts) is routed by its unverified `iss` only to choose the issuer's
 * keys and rules; jose then verifies the signature and `iss` for real. Any other string is an
 * opaque token and goes to the one introspection issuer that claims it (routing.ts): never to
 * each in turn. After the token checks come the rights (the read scope is needed to log in), the
 * maildrop name (the issuer's `domains`) and the SASL user, which must name the token's user.
 *
 * @example
 * ```ts
 * const validator = createTokenValidator({
 *   issuers: [{ issuer: 'https://idp.example.com/realms/mail', audience: 'pop3.example.com', typ: ['JWT'] }],
 * });
 * const token = await validator.validate(accessToken, { user: 'alice@example.com' });
 * // token.user, token.rights.delete, token.expiresAt ...
 * ```
 */
import { TokenValidationError } from '../errors.ts';
import { type Logger, silentLogger } from '../observability/logger.ts';
import { mailboxOf, saslUserMatches } from './claims.ts';
import { MetadataResolver } from './discovery.ts';
import { type AuthEventListener, createEmitter, since } from './events.ts';
import { failureFields, IssuerHttp } from './http.ts';
import { Introspector } from './introspection.ts';
import { verifyJwt } from './jwt.ts';
import { createKeySet, type KeySet } from './keys.ts';
import { type ResolvedIssuer, type ResolvedValidatorConfig, resolveValidatorOptions } from './options.ts';
import { createOpaqueRouter } from './routing.ts';
import type { TokenValidator, ValidatedToken, ValidationContext } from './types.ts';

/** Longest token accepted (the server's SASL cap is 64 KiB of base64 too). */
export const MAX_TOKEN_LENGTH = 64 * 1024;

export interface TokenValidatorDependencies {
  readonly logger?: Logger;
  /** Metrics hook; the same events go to the `popgate:auth` diagnostics channel. */
  readonly onEvent?: AuthEventListener;
  /** Clock in milliseconds since the epoch (tests freeze it). Default `Date.now`. */
  readonly now?: () => number;
}

/** The validator with its configuration and operations beyond {@link TokenValidator}. */
export interface PopgateTokenValidator extends TokenValidator {
  /** The frozen, validated configuration (client secrets print as `[REDACTED]`). */
  readonly config: ResolvedValidatorConfig;
  /** Cached introspection answers right now. */
  readonly introspectionCacheSize: number;
  /**
   * Fetches metadata and keys of every issuer now, so a misconfiguration shows at startup.
   * Rejects with the first `ERR_AUTH_UNAVAILABLE`; validation would retry later anyway.
   */
  warmUp(): Promise<void>;
  /**
   * Like {@link warmUp}, but checks every issuer and reports each: `ok`, or the reason it cannot
   * be used yet and, when known, what to do (e.g. set the issuer's `ca`). Never rejects.
   */
  checkIssuers(): Promise<readonly IssuerCheck[]>;
  /** Closes idle connections to the identity providers (the validator stays usable). */
  close(): void;
}

/** The outcome of {@link PopgateTokenValidator.checkIssuers} for one issuer. */
export interface IssuerCheck {
  readonly issuer: string;
  readonly ok: boolean;
  /**
   * Whether the check asked the issuer anything: false when its keys come from a file and its
   * introspection endpoint (if any) is configured, so nothing is fetched before the first login.
   */
  readonly contacted: boolean;
  /** Why the issuer cannot be used yet (TLS, network, HTTP status, document). */
  readonly reason?: string;
  /** What the operator can do about it, when known. */
  readonly hint?: string;
}

interface IssuerState {
  readonly config: ResolvedIssuer;
  readonly metadata: MetadataResolver;
  readonly keys: KeySet | undefined;
  readonly http: IssuerHttp;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function refuse(code: TokenValidationError['code'], message: string): TokenValidationError {
  return new TokenValidationError(code, message);
}

/** The unverified `iss` of a JWT-shaped token; used only to pick keys. */
function unverifiedIssuer(token: string): string {
  const payload = token.slice(token.indexOf('.') + 1, token.lastIndexOf('.'));
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw refuse('ERR_AUTH_INVALID_TOKEN', 'the token is malformed');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw refuse('ERR_AUTH_INVALID_TOKEN', 'the token is malformed');
  }
  const iss = (claims as Record<string, unknown>).iss;
  if (typeof iss !== 'string') throw refuse('ERR_AUTH_ISSUER', 'the token names no issuer');
  return iss;
}

/**
 * Creates the validator. Options are checked once into a frozen configuration; nothing is
 * fetched until the first validation (or {@link PopgateTokenValidator.warmUp}).
 *
 * @throws ConfigError naming the offending option.
 */
export function createTokenValidator(
  options: unknown,
  dependencies: TokenValidatorDependencies = {},
): PopgateTokenValidator {
  const config = resolveValidatorOptions(options);
  const logger = dependencies.logger ?? silentLogger;
  const now = dependencies.now ?? Date.now;
  const emit = createEmitter(dependencies.onEvent);
  const byIssuer = new Map<string, IssuerState>();
  for (const issuer of config.issuers) {
    const http = new IssuerHttp(issuer.ca);
    const metadata = new MetadataResolver(issuer, config, emit, logger, now, http);
    const keys =
      issuer.method === 'jwt'
        ? createKeySet({ issuer, config, metadata, emit, logger, now, http })
        : undefined;
    byIssuer.set(issuer.issuer, { config: issuer, metadata, keys, http });
  }
  const routeOpaque = createOpaqueRouter(config.issuers);
  const introspector = new Introspector({ config, emit, logger, now });
  const errorIssuer = new WeakMap<object, ResolvedIssuer>();

  const introspectAt = async (state: IssuerState, token: string, signal: AbortSignal | undefined) =>
    introspector.validate(token, state.config, state.metadata, state.http, signal);

  const validate = async (token: string, context: ValidationContext): Promise<ValidatedToken> => {
    const start = performance.now();
    let state: IssuerState | undefined;
    let method: 'jwt' | 'introspection' | 'unknown' = 'unknown';
    let cache: 'hit' | 'miss' | undefined;
    try {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        throw refuse('ERR_AUTH_INVALID_TOKEN', 'the token is empty or too long');
      }
      let validated: ValidatedToken;
      if (JWT_SHAPE.test(token)) {
        const iss = unverifiedIssuer(token);
        state = byIssuer.get(iss);
        if (!state)
          throw refuse('ERR_AUTH_ISSUER', 'the token comes from an issuer this server does not trust');
        method = state.config.method;
        if (state.keys) {
          validated = await verifyJwt(token, state.config, state.keys, now());
        } else {
          const result = await introspectAt(state, token, context.signal);
          cache = result.cache;
          validated = result.token;
        }
      } else {
        method = 'introspection';
        state = byIssuer.get(routeOpaque(token, context.user).issuer)!;
        const result = await introspectAt(state, token, context.signal);
        cache = result.cache;
        validated = result.token;
      }
      const issuer = state.config;
      if (!validated.rights.read) {
        throw new TokenValidationError(
          'ERR_AUTH_SCOPE',
          `the token lacks the scope needed to read mail (${issuer.scopes.read.join(' or ')})`,
          { requiredScope: issuer.scopes.read[0]! },
        );
      }
      const mailbox = mailboxOf(issuer, validated.user);
      if (context.user !== undefined && !saslUserMatches(issuer, context.user, validated.user, mailbox)) {
        throw refuse(
          'ERR_AUTH_USER_MISMATCH',
          `the login name does not match the token's ${issuer.userClaim} claim; log in as the token's user`,
        );
      }
      if (mailbox !== validated.user) validated = Object.freeze({ ...validated, user: mailbox });
      emit({
        type: 'validation',
        issuer: issuer.issuer,
        method,
        result: 'ok',
        code: undefined,
        durationMs: since(start),
        cache,
      });
      return validated;
    } catch (caught) {
      const error =
        caught instanceof TokenValidationError
          ? caught
          : new TokenValidationError(
              'ERR_AUTH_UNAVAILABLE',
              'token validation failed unexpectedly; try again later',
              {
                cause: caught,
                temporary: true,
              },
            );
      if (!(caught instanceof TokenValidationError)) {
        logger.error(
          { reason: caught instanceof Error ? caught.message : String(caught) },
          'token validation bug',
        );
      }
      if (state) errorIssuer.set(error, state.config);
      emit({
        type: 'validation',
        issuer: state?.config.issuer,
        method,
        result: error.temporary ? 'unavailable' : 'refused',
        code: error.code,
        durationMs: since(start),
        cache,
      });
      logger.debug({ issuer: state?.config.issuer, code: error.code }, 'token refused');
      throw error;
    }
  };

  const challenge = (error: unknown): { scope?: string; openidConfiguration?: string } => {
    const issuer =
      (typeof error === 'object' && error !== null ? errorIssuer.get(error) : undefined) ??
      byIssuer.get(config.challengeIssuer)!.config;
    const required = error instanceof TokenValidationError ? error.requiredScope : undefined;
    const scope = required ?? issuer.scopes.read[0];
    return {
      ...(scope !== undefined ? { scope } : {}),
      openidConfiguration: issuer.openidConfiguration,
    };
  };

  const warmUpOne = async (state: IssuerState): Promise<void> => {
    if (state.keys) await state.keys.load();
    if (state.config.introspection && !state.config.introspection.endpoint) {
      const metadata = await state.metadata.get();
      if (!metadata.introspectionEndpoint) {
        throw new TokenValidationError(
          'ERR_AUTH_UNAVAILABLE',
          `issuer ${state.config.issuer} publishes no introspection_endpoint; configure introspection.endpoint`,
          { temporary: true },
        );
      }
    }
  };

  const warmUp = async (): Promise<void> => {
    for (const state of byIssuer.values()) await warmUpOne(state);
  };

  const contacts = ({ config: issuer }: IssuerState): boolean =>
    (issuer.method === 'jwt' && issuer.keys.kind !== 'file') ||
    (issuer.introspection !== undefined && issuer.introspection.endpoint === undefined);

  const checkIssuers = (): Promise<readonly IssuerCheck[]> =>
    Promise.all(
      [...byIssuer.values()].map((state) =>
        warmUpOne(state).then(
          (): IssuerCheck => ({ issuer: state.config.issuer, ok: true, contacted: contacts(state) }),
          (error: unknown): IssuerCheck => ({
            issuer: state.config.issuer,
            ok: false,
            contacted: contacts(state),
            ...failureFields(error),
          }),
        ),
      ),
    );

  return Object.freeze({
    config,
    get introspectionCacheSize() {
      return introspector.cacheSize;
    },
    validate,
    challenge,
    warmUp,
    checkIssuers,
    close: () => {
      for (const state of byIssuer.values()) state.http.close();
    },
  });
}
