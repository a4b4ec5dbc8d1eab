/** Provider presets are data: what a provider's OAuth and POP3 look like, nothing executable. */

export type ProviderId = 'microsoft' | 'google' | 'fastmail' | 'zoho' | 'custom';
export type FlowName = 'device' | 'browser' | 'client-credentials';
export type SaslMechanismName = 'XOAUTH2' | 'OAUTHBEARER';

/** OAuth endpoints given explicitly (instead of, or on top of, discovery). */
export interface ProviderEndpoints {
  readonly authorization?: string;
  readonly token?: string;
  readonly device?: string;
  readonly revocation?: string;
}

export interface ProviderPreset {
  readonly id: ProviderId;
  readonly displayName: string;
  /** Issuer for discovery (RFC 8414 / OIDC); used when endpoints are missing. */
  readonly issuer?: string;
  readonly endpoints?: ProviderEndpoints;
  /** Minimal delegated scopes: POP3 access plus offline access (a refresh token). */
  readonly scopes: readonly string[];
  /** Scopes for app-only access through the client credentials grant, when supported. */
  readonly appOnlyScopes?: readonly string[];
  /** Flows the provider accepts for the POP3 scope, preferred first. */
  readonly flows: readonly FlowName[];
  /** Extra authorization request parameters (e.g. Google's `access_type=offline`). */
  readonly authorizationParams?: Readonly<Record<string, string>>;
  /** The SASL mechanism the provider's POP3 server wants. */
  readonly mechanism: SaslMechanismName;
  /** True when the server wants the SASL response in a second step (after an empty `+`). */
  readonly twoStepAuth: boolean;
  readonly pop3: { readonly host: string; readonly port: number; readonly tls: 'implicit' | 'starttls' };
  /** When there is no revocation endpoint: how a user withdraws consent by hand. */
  readonly consentWithdrawal?: string;
  /** Provider documentation in this package. */
  readonly docs: string;
}
