/** What the server learned from a valid access token. Contains no part of the token. */
export interface ValidatedToken {
  /**
   * The maildrop the token opens: its configured username claim in canonical form (NFC; lower
   * case for `email`, `preferred_username`, `upn`, `username`; exact for `sub`), and with the
   * issuer's `domains` set, in the issuer's domain (`alice` → `alice@a.example`). The server
   * locks, throttles and audits by it.
   */
  readonly user: string;
  readonly issuer: string;
  readonly subject: string | undefined;
  readonly clientId: string | undefined;
  readonly scopes: ReadonlySet<string>;
  /** When the token stops being valid; the session may not outlive it (plus grace). */
  readonly expiresAt: Date | undefined;
  /** Rights the scopes map to: `read` is needed to log in, `delete` for DELE. */
  readonly rights: { readonly read: boolean; readonly delete: boolean };
  /** How the token was checked, for audit and metrics. */
  readonly method: 'jwt' | 'introspection';
}

export interface ValidationContext {
  /**
   * The SASL user (XOAUTH2 `user=`, OAUTHBEARER `a=`); `validate` refuses it with
   * `ERR_AUTH_USER_MISMATCH` unless it equals the token's user claim or its maildrop name
   * {@link ValidatedToken.user} (compared as the claim is canonicalised). With several issuers its
   * domain also picks the issuer an opaque token is sent to. `undefined` when the client sent none.
   */
  readonly user: string | undefined;
  readonly signal?: AbortSignal;
}

/**
 * Server-side token validation. Resolves with the validated token, or rejects with a
 * TokenValidationError whose `temporary` flag separates IdP outages ([SYS/TEMP]) from bad
 * tokens ([AUTH]).
 */
export interface TokenValidator {
  validate(token: string, context: ValidationContext): Promise<ValidatedToken>;
  /** RFC 7628 error challenge fields for a failed login (scope, openid-configuration). */
  challenge(error: unknown): { scope?: string; openidConfiguration?: string };
}
