/**
 * What each issuer may speak for, so several issuers cannot step on each other
 * (docs/server-auth.md, "Several issuers"):
 *
 * - `domains`: the mail domains an issuer may name. A login name with an `@` must be in one of
 *   them; one without gets the first appended (`alice` → `alice@a.example`), so two issuers'
 *   `alice` never share a maildrop. Required when more than one issuer is configured, and no
 *   domain may belong to two issuers.
 * - `emailVerified`: whether an `email` login name needs `email_verified: true`.
 * - `tokenPrefixes`: opaque tokens that start with one of these belong to this issuer. With them
 *   or with the SASL user's domain, an opaque token goes to exactly one introspection endpoint.
 *
 * A single issuer needs none of this and keeps the plain `<root>/<user>` maildrop layout.
 */
import { ConfigError } from '../errors.ts';
import type { OptionsChecker } from '../internal/options.ts';

/**
 * `required`: an `email` login needs `email_verified: true`. `if-present`: refused when the token
 * carries `email_verified` and it is not `true`. `ignore`: not looked at.
 */
export type EmailVerifiedRule = 'required' | 'if-present' | 'ignore';
export const EMAIL_VERIFIED_RULES: readonly EmailVerifiedRule[] = ['required', 'if-present', 'ignore'];

/** One issuer's scope, resolved. */
export interface IssuerScope {
  /** Canonical (NFC, lower case) mail domains; empty: any login name, used as it is. */
  readonly domains: readonly string[];
  readonly emailVerified: EmailVerifiedRule;
  readonly tokenPrefixes: readonly string[];
}

/** A DNS name of letters (any script), digits and inner hyphens, dot-separated (RFC 5890 U-labels). */
const DOMAIN =
  /^[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?)*$/u;

/** Token prefixes: printable ASCII without white space, as bearer tokens are (RFC 6750 section 2.1). */
const PREFIX = /^[\x21-\x7e]{1,64}$/;

/** The canonical form of a domain: NFC, lower case. */
export function canonicalDomain(value: string): string {
  return value.normalize('NFC').toLowerCase();
}

/** The domain part of a login name (after the last `@`), canonical; undefined without one. */
export function domainOf(login: string): string | undefined {
  const at = login.lastIndexOf('@');
  return at < 0 ? undefined : canonicalDomain(login.slice(at + 1));
}

function stringList(value: unknown, key: string, check: OptionsChecker): readonly string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items) || items.length === 0) {
    throw check.invalid(key, 'must be a string or a non-empty list of strings');
  }
  return items.map((item, i) => check.string(item, `${key}[${i}]`, { maxLength: 253 }));
}

/** Resolves `domains`, `emailVerified` and `tokenPrefixes` of `input` (the issuer's raw options). */
export function resolveIssuerScope(
  input: Record<string, unknown>,
  key: string,
  check: OptionsChecker,
  defaults: { emailVerified: EmailVerifiedRule; introspects: boolean },
): IssuerScope {
  const domains = stringList(input.domains, `${key}.domains`, check).map((raw, i) => {
    const domain = canonicalDomain(raw.startsWith('@') ? raw.slice(1) : raw);
    if (!DOMAIN.test(domain)) {
      throw check.invalid(`${key}.domains[${i}]`, 'must be a mail domain such as example.com');
    }
    return domain;
  });
  if (new Set(domains).size !== domains.length) throw check.invalid(`${key}.domains`, 'lists a domain twice');
  const tokenPrefixes = stringList(input.tokenPrefixes, `${key}.tokenPrefixes`, check);
  tokenPrefixes.forEach((prefix, i) => {
    if (!PREFIX.test(prefix)) {
      throw check.invalid(
        `${key}.tokenPrefixes[${i}]`,
        'must be 1 to 64 printable ASCII characters without spaces',
      );
    }
  });
  if (tokenPrefixes.length > 0 && !defaults.introspects) {
    throw check.invalid(
      `${key}.tokenPrefixes`,
      'applies only to an issuer with introspection (they route opaque tokens)',
    );
  }
  return Object.freeze({
    domains: Object.freeze(domains),
    emailVerified: check.oneOf(
      input.emailVerified,
      `${key}.emailVerified`,
      EMAIL_VERIFIED_RULES,
      defaults.emailVerified,
    ),
    tokenPrefixes: Object.freeze([...tokenPrefixes]),
  });
}

interface ScopedIssuer {
  readonly issuer: string;
  readonly scope: IssuerScope;
  readonly introspects: boolean;
}

/**
 * Refuses a configuration in which one login name or one opaque token could belong to two
 * issuers: with several issuers each must list its `domains`, no domain may be listed twice, and
 * no two introspection issuers' token prefixes may overlap (one a prefix of the other).
 */
export function checkIssuerScopes(issuers: readonly ScopedIssuer[]): void {
  if (issuers.length < 2) return;
  const owner = new Map<string, number>();
  issuers.forEach((issuer, i) => {
    if (issuer.scope.domains.length === 0) {
      throw new ConfigError(
        'ERR_CONFIG_MISSING',
        `token validation option issuers[${i}].domains is required with several issuers: list the mail ` +
          `domains ${issuer.issuer} may name, so the same login name from two issuers cannot share a maildrop`,
        { key: `issuers[${i}].domains` },
      );
    }
    for (const domain of issuer.scope.domains) {
      const first = owner.get(domain);
      if (first !== undefined) {
        throw new ConfigError(
          'ERR_CONFIG_INVALID',
          `token validation option issuers[${i}].domains lists ${domain}, which issuers[${first}] ` +
            `(${issuers[first]!.issuer}) lists too; a domain belongs to one issuer`,
          { key: `issuers[${i}].domains` },
        );
      }
      owner.set(domain, i);
    }
  });
  const prefixes = issuers.flatMap((issuer, i) =>
    issuer.introspects ? issuer.scope.tokenPrefixes.map((prefix) => ({ prefix, i })) : [],
  );
  for (const a of prefixes) {
    for (const b of prefixes) {
      if (a.i < b.i && (a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix))) {
        throw new ConfigError(
          'ERR_CONFIG_INVALID',
          `token validation option issuers[${b.i}].tokenPrefixes: "${b.prefix}" overlaps "${a.prefix}" of ` +
            `issuers[${a.i}]; a token must belong to one issuer`,
          { key: `issuers[${b.i}].tokenPrefixes` },
        );
      }
    }
  }
}
