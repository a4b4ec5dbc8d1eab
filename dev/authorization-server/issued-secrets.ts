import { recordTestSecret } from '../secret-ledger.ts';
import type { KoaContext } from './types.ts';

/** Fields of token, device authorization and redirect responses that carry a secret. */
const ISSUED_SECRET_FIELDS = ['access_token', 'refresh_token', 'id_token', 'device_code', 'code'] as const;

/**
 * Fields of token, revocation and introspection requests that carry a secret the client holds:
 * the PKCE verifier, a client secret sent in the body, a signed client assertion.
 */
const RECEIVED_SECRET_FIELDS = ['code_verifier', 'client_secret', 'client_assertion'] as const;

/**
 * oidc-provider middleware: records every secret the provider hands out (body or redirect), and
 * every secret a client sends it (RECEIVED_SECRET_FIELDS, from the parsed request body), in the
 * test run's ledger (../secret-ledger.ts), so the run's secret scan looks for each of them.
 */
export async function recordIssuedSecrets(ctx: KoaContext, next: () => Promise<void>): Promise<void> {
  try {
    await next();
  } finally {
    // Also when the request failed: a wrong verifier or secret is still a secret the client sent.
    const received = (ctx as { oidc?: { body?: Record<string, unknown> } }).oidc?.body;
    if (received && typeof received === 'object') {
      for (const field of RECEIVED_SECRET_FIELDS) {
        if (typeof received[field] === 'string') recordTestSecret(received[field]);
      }
    }
  }
  const body = ctx.body as Record<string, unknown> | null | undefined;
  if (body && typeof body === 'object' && !Buffer.isBuffer(body)) {
    for (const field of ISSUED_SECRET_FIELDS) {
      if (typeof body[field] === 'string') recordTestSecret(body[field]);
    }
  }
  const location = ctx.response.get('location');
  if (location) {
    const url = URL.canParse(location) ? new URL(location) : undefined;
    const params = new URLSearchParams(url ? `${url.search.slice(1)}&${url.hash.slice(1)}` : '');
    for (const field of ISSUED_SECRET_FIELDS) recordTestSecret(params.get(field) ?? undefined);
  }
}
