/**
 * Server-side access token validation: JWT access tokens (RFC 9068) via JWKS and opaque tokens
 * via introspection (RFC 7662), for several issuers at once. See docs/server-auth.md.
 */
export { canonicalUser, scopesOf } from './claims.ts';
export {
  AUTH_CHANNEL,
  type AuthEvent,
  type AuthEventListener,
  type CacheEvent,
  type DiscoveryEvent,
  type IntrospectionEvent,
  type JwksFetchEvent,
  type ValidationEvent,
} from './events.ts';
export {
  ASYMMETRIC_ALGORITHMS,
  type IntrospectionCacheOptions,
  type IntrospectionOptions,
  type IssuerOptions,
  type ResolvedIssuer,
  type ResolvedValidatorConfig,
  resolveValidatorOptions,
  type TokenValidatorOptions,
  USER_CLAIMS,
  type UserClaim,
} from './options.ts';
export type { TokenValidator, ValidatedToken, ValidationContext } from './types.ts';
export {
  createTokenValidator,
  MAX_TOKEN_LENGTH,
  type PopgateTokenValidator,
  type TokenValidatorDependencies,
} from './validator.ts';
