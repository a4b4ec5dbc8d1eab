/**
 * Presets for the providers popgate knows, as data. Each states its endpoints, minimal scopes,
 * accepted flows, SASL mechanism and POP3 host; docs/providers/*.md explain app registration,
 * consent and the known traps. Anything else is a `custom` provider: discovery or endpoints.
 */
import { OAuthError } from '../../errors.ts';
import type { ProviderId, ProviderPreset } from './types.ts';

const MICROSOFT_TENANT_BASE = 'https://login.microsoftonline.com/common/oauth2/v2.0';

export const PRESETS: Readonly<Record<Exclude<ProviderId, 'custom'>, ProviderPreset>> = Object.freeze({
  microsoft: Object.freeze({
    id: 'microsoft',
    displayName: 'Microsoft 365 / Outlook.com',
    // Endpoints of the `common` tenant; a single-tenant app sets its tenant's endpoints instead.
    endpoints: Object.freeze({
      authorization: `${MICROSOFT_TENANT_BASE}/authorize`,
      token: `${MICROSOFT_TENANT_BASE}/token`,
      device: `${MICROSOFT_TENANT_BASE}/devicecode`,
    }),
    scopes: Object.freeze(['https://outlook.office.com/POP.AccessAsUser.All', 'offline_access']),
    appOnlyScopes: Object.freeze(['https://outlook.office365.com/.default']),
    flows: Object.freeze(['device', 'browser', 'client-credentials'] as const),
    mechanism: 'XOAUTH2',
    twoStepAuth: true,
    pop3: Object.freeze({ host: 'outlook.office365.com', port: 995, tls: 'implicit' }),
    consentWithdrawal:
      'Microsoft has no token revocation endpoint. Remove the app\'s access at https://myapps.microsoft.com (work or school account, "Manage your applications") or https://account.live.com/consent/Manage (personal account); an administrator can also revoke all of a user\'s sessions (Revoke-MgUserSignInSession).',
    docs: 'docs/providers/microsoft365.md',
  }),
  google: Object.freeze({
    id: 'google',
    displayName: 'Google (Gmail)',
    endpoints: Object.freeze({
      authorization: 'https://accounts.google.com/o/oauth2/v2/auth',
      token: 'https://oauth2.googleapis.com/token',
      revocation: 'https://oauth2.googleapis.com/revoke',
    }),
    // Google refuses https://mail.google.com/ on the device flow: loopback browser flow only.
    scopes: Object.freeze(['https://mail.google.com/']),
    flows: Object.freeze(['browser'] as const),
    // Google does not know `offline_access`; a refresh token comes with access_type=offline.
    authorizationParams: Object.freeze({ access_type: 'offline', prompt: 'consent' }),
    mechanism: 'XOAUTH2',
    twoStepAuth: false,
    pop3: Object.freeze({ host: 'pop.gmail.com', port: 995, tls: 'implicit' }),
    docs: 'docs/providers/google.md',
  }),
  fastmail: Object.freeze({
    id: 'fastmail',
    displayName: 'Fastmail',
    issuer: 'https://api.fastmail.com',
    scopes: Object.freeze(['https://www.fastmail.com/dev/protocol-pop', 'offline_access']),
    flows: Object.freeze(['browser'] as const),
    mechanism: 'OAUTHBEARER',
    twoStepAuth: false,
    pop3: Object.freeze({ host: 'pop.fastmail.com', port: 995, tls: 'implicit' }),
    docs: 'docs/providers/fastmail.md',
  }),
  zoho: Object.freeze({
    id: 'zoho',
    displayName: 'Zoho Mail',
    // Zoho runs one accounts server per data centre (.com, .eu, .in, .com.au, .jp, .ca); the
    // preset names .com — other regions set their own endpoints.
    endpoints: Object.freeze({
      authorization: 'https://accounts.zoho.com/oauth/v2/auth',
      token: 'https://accounts.zoho.com/oauth/v2/token',
      device: 'https://accounts.zoho.com/oauth/v3/device/code',
      revocation: 'https://accounts.zoho.com/oauth/v2/token/revoke',
    }),
    scopes: Object.freeze(['ZOHOMAIL.PROTOCOL.POP']),
    flows: Object.freeze(['browser', 'device'] as const),
    authorizationParams: Object.freeze({ access_type: 'offline', prompt: 'consent' }),
    mechanism: 'XOAUTH2',
    twoStepAuth: false,
    pop3: Object.freeze({ host: 'pop.zoho.com', port: 995, tls: 'implicit' }),
    docs: 'docs/providers/zoho.md',
  }),
});

/** The preset for a provider id, or undefined for `custom`. Unknown ids are an error. */
export function getPreset(id: string): ProviderPreset | undefined {
  if (id === 'custom') return undefined;
  const preset = (PRESETS as Record<string, ProviderPreset>)[id];
  if (!preset) {
    throw new OAuthError(
      'ERR_OAUTH_PROVIDER_UNKNOWN',
      `unknown provider "${id}"; use one of ${Object.keys(PRESETS).join(', ')}, or "custom" with an issuer or explicit endpoints`,
    );
  }
  return preset;
}
