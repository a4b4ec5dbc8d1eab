/**
 * The `/interaction/:uid[/login|/confirm|/abort]` routes oidc-provider sends a user agent to:
 * sign-in (any non-empty name is an account), consent (grants what the client asked for) and
 * deny. The pages themselves are in pages.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { consentPage, loginMissingNamePage, loginPage } from './pages.ts';
import type { OidcProvider } from './types.ts';

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Handles one request under `/interaction/` with the provider current at that moment. */
export async function handleInteraction(
  provider: OidcProvider,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(path);
  if (!match) {
    res.writeHead(404).end();
    return;
  }
  const [, uid = '', action] = match;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    res.writeHead(400).end();
    return;
  }
  if (req.method === 'GET' && action === undefined) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      details.prompt.name === 'login' ? loginPage(uid) : consentPage(uid, String(details.params.scope ?? '')),
    );
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const form = await readForm(req);
  if (action === 'login') {
    const login = form.get('login')?.trim() ?? '';
    if (!login) {
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(loginMissingNamePage());
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User denied the request' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const accountId = details.session?.accountId;
  if (!accountId) {
    res.writeHead(400).end();
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  if (!grant) {
    res.writeHead(400).end();
    return;
  }
  const missing = details.prompt.details;
  if (Array.isArray(missing.missingOIDCScope))
    grant.addOIDCScope((missing.missingOIDCScope as string[]).join(' '));
  if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
  if (missing.missingResourceScopes && typeof missing.missingResourceScopes === 'object') {
    for (const [indicator, scopes] of Object.entries(
      missing.missingResourceScopes as Record<string, string[]>,
    )) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
