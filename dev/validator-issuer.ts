import type { AuthorizationServer } from './authorization-server/index.ts';

/**
 * The token-validator issuer entry (src/auth options) that trusts a development authorization
 * server: its JWT audience and its opaque-token audience, introspected with its resource-server
 * client. Used by tests, benchmarks and the demo so they all check tokens the same way.
 */
export function devValidatorIssuer(as: AuthorizationServer): Record<string, unknown> {
  return {
    issuer: as.issuer,
    audience: [as.pop3Audience, as.opaqueAudience],
    introspection: {
      clientId: as.clients.introspector.clientId,
      clientSecret: as.clients.introspector.clientSecret,
    },
  };
}
