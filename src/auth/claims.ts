/**
 * From checked claims to a {@link ValidatedToken}: the login name (the issuer's user claim),
 * scopes from `scope` (RFC 6749 section 3.3, RFC 9068 section 2.2.3) and `scp` (Entra ID, Okta),
 * rights, client and expiry. Shared by the JWT and introspection paths so both decide alike.
 */
import { TokenValidationError } from '../errors.ts';
import { canonicalDomain } from './issuer-scope.ts';
import type { ResolvedIssuer, UserClaim } from './options.ts';
import type { ValidatedToken } from './types.ts';

/** Claims compared case-insensitively: they hold mail addresses or login names. */
const CASE_INSENSITIVE: ReadonlySet<UserClaim> = new Set(['email', 'preferred_username', 'upn', 'username']);

/** Canonical form of a login name for `claim`: NFC, and lower case for name-like claims. */
export function canonicalUser(claim: UserClaim, value: string): string {
  const nfc = value.normalize('NFC');
  return CASE_INSENSITIVE.has(claim) ? nfc.toLowerCase() : nfc;
}

function invalid(message: string): TokenValidationError {
  return new TokenValidationError('ERR_AUTH_INVALID_TOKEN', message);
}

function addScopes(into: Set<string>, value: unknown): void {
  if (typeof value === 'string') {
    for (const scope of value.split(' ')) if (scope) into.add(scope);
  } else if (Array.isArray(value)) {
    for (const scope of value) if (typeof scope === 'string' && scope) into.add(scope);
  }
}

/** Scopes from both `scope` (space-separated) and `scp` (array or space-separated string). */
export function scopesOf(claims: Record<string, unknown>): ReadonlySet<string> {
  const scopes = new Set<string>();
  addScopes(scopes, claims.scope);
  addScopes(scopes, claims.scp);
  return scopes;
}

/**
 * The canonical user claim value of the token. It names a maildrop, so it must be a plain
 * string: no control characters, no path separators, not `.` or `..`, at most 255 characters.
 * An `email` login name obeys the issuer's `emailVerified` rule.
 */
export function userOf(issuer: ResolvedIssuer, claims: Record<string, unknown>): string {
  const claim = issuer.userClaim;
  const value = claims[claim];
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(
      `the token has no ${claim} claim; ask the identity provider to include it, or set userClaim`,
    );
  }
  if (value.length > 255 || /[\0-\x1f\x7f/\\]/.test(value) || value === '.' || value === '..') {
    throw invalid(`the token's ${claim} claim is not a usable login name`);
  }
  if (claim === 'email') {
    const verified = claims.email_verified;
    if (
      (issuer.emailVerified === 'required' && verified !== true) ||
      (issuer.emailVerified === 'if-present' && verified !== undefined && verified !== true)
    ) {
      throw invalid(
        verified === undefined
          ? 'the token does not say its email is verified (email_verified); it cannot name a mailbox'
          : 'the token marks its email as unverified; it cannot name a mailbox',
      );
    }
  }
  return canonicalUser(claim, value);
}

/**
 * The maildrop name for a canonical login name of `issuer`: the name itself when the issuer lists
 * no domains; else the name with its domain checked against the list (lower case), or, without
 * an `@`, the name at the issuer's first domain.
 */
export function mailboxOf(issuer: ResolvedIssuer, login: string): string {
  if (issuer.domains.length === 0) return login;
  const at = login.lastIndexOf('@');
  if (at < 0) return `${login}@${issuer.domains[0]!}`;
  const domain = canonicalDomain(login.slice(at + 1));
  if (!issuer.domains.includes(domain)) {
    throw invalid(
      `the token's ${issuer.userClaim} claim is in a domain issuer ${issuer.issuer} may not name ` +
        `(its domains: ${issuer.domains.join(', ')})`,
    );
  }
  return `${login.slice(0, at)}@${domain}`;
}

/**
 * True when the SASL user names the token's user: equal to its login name or to its maildrop
 * name, compared as the claim is canonicalised (the domain part always case-insensitively).
 */
export function saslUserMatches(
  issuer: ResolvedIssuer,
  saslUser: string,
  login: string,
  mailbox: string,
): boolean {
  const canonical = canonicalUser(issuer.userClaim, saslUser);
  if (canonical === login || canonical === mailbox) return true;
  const at = canonical.lastIndexOf('@');
  if (at < 0 || issuer.domains.length === 0) return false;
  return `${canonical.slice(0, at)}@${canonicalDomain(canonical.slice(at + 1))}` === mailbox;
}

/** Builds the validated token from claims that passed signature/introspection checks. */
export function validatedToken(
  issuer: ResolvedIssuer,
  claims: Record<string, unknown>,
  method: 'jwt' | 'introspection',
): ValidatedToken {
  const scopes = scopesOf(claims);
  const str = (name: string): string | undefined => {
    const value = claims[name];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  };
  const exp = claims.exp;
  return Object.freeze({
    user: userOf(issuer, claims),
    issuer: issuer.issuer,
    subject: str('sub'),
    clientId: str('client_id') ?? str('azp') ?? str('appid'),
    scopes,
    expiresAt: typeof exp === 'number' && Number.isFinite(exp) ? new Date(exp * 1000) : undefined,
    rights: Object.freeze({
      read: issuer.scopes.read.some((scope) => scopes.has(scope)),
      delete: issuer.scopes.delete.some((scope) => scopes.has(scope)),
    }),
    method,
  });
}

/** True when `aud` (a string or an array) contains one of the accepted audiences. */
export function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  if (typeof aud === 'string') return accepted.includes(aud);
  if (Array.isArray(aud)) return aud.some((value) => typeof value === 'string' && accepted.includes(value));
  return false;
}

/**
 * Sender-constrained tokens (RFC 8705 `x5t#S256`, RFC 9449 `jkt`) need a proof POP3 cannot carry;
 * accepting them as bearer tokens would undo the binding, so they are refused.
 */
export function refuseSenderConstrained(claims: Record<string, unknown>): void {
  if (claims.cnf !== undefined && claims.cnf !== null) {
    throw new TokenValidationError(
      'ERR_AUTH_TYPE',
      'the token is sender-constrained (cnf); POP3 can only use bearer tokens',
    );
  }
}
