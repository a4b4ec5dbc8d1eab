/**
 * Which issuer an opaque token is sent to for introspection: exactly one, chosen before anything
 * is sent, or none (docs/server-auth.md, "Several issuers"). Offering a token to each issuer in
 * turn would show issuer B's tokens to issuer A, who could replay them; so the token never goes
 * to an issuer that has not claimed it.
 *
 * 1. An issuer whose `tokenPrefixes` start the token (prefixes never overlap: options.ts).
 * 2. With a single issuer, that issuer (when it introspects and declares no prefixes).
 * 3. With several, the issuer whose `domains` hold the SASL user's domain (domains are disjoint),
 *    when it introspects and declares no prefixes (its tokens would carry them).
 * Anything else is refused without a request.
 */
import { TokenValidationError } from '../errors.ts';
import { domainOf } from './issuer-scope.ts';
import type { ResolvedIssuer } from './options.ts';

function refuse(message: string): TokenValidationError {
  return new TokenValidationError('ERR_AUTH_ISSUER', message);
}

/** Returns the router for `issuers`: the one issuer to ask about an opaque token, or a refusal. */
export function createOpaqueRouter(
  issuers: readonly ResolvedIssuer[],
): (token: string, saslUser: string | undefined) => ResolvedIssuer {
  const introspecting = issuers.filter((issuer) => issuer.introspection !== undefined);
  return (token, saslUser) => {
    if (introspecting.length === 0) {
      throw new TokenValidationError(
        'ERR_AUTH_INVALID_TOKEN',
        'the token is not a JWT and no introspection issuer is configured',
      );
    }
    const prefixed = introspecting.find((issuer) =>
      issuer.tokenPrefixes.some((prefix) => token.startsWith(prefix)),
    );
    if (prefixed) return prefixed;
    let owner: ResolvedIssuer | undefined;
    if (issuers.length === 1) {
      owner = issuers[0]!;
    } else {
      const domain = saslUser === undefined ? undefined : domainOf(saslUser);
      if (domain === undefined) {
        throw refuse(
          'with several issuers an opaque token is introspected only at the issuer of the login ' +
            "domain: log in as user@domain (or configure the issuers' token prefixes)",
        );
      }
      owner = issuers.find((issuer) => issuer.domains.includes(domain));
      if (!owner) throw refuse('no configured issuer owns the domain of the login name');
    }
    if (!owner.introspection) {
      throw refuse(`issuer ${owner.issuer} has no introspection configured, and the token is not a JWT`);
    }
    if (owner.tokenPrefixes.length > 0) {
      throw refuse(`the token does not carry a prefix of issuer ${owner.issuer}'s tokens`);
    }
    return owner;
  };
}
