/**
 * Authorization code grant with PKCE S256 (RFC 7636) for a native app (RFC 8252): a loopback
 * listener on 127.0.0.1 on an ephemeral port receives the redirect (§7.3); `state` is generated
 * and checked, `iss` is checked when the server sends it (RFC 9207). When no browser can be
 * opened, the user may paste the redirect URL instead (`pastedRedirect`).
 */
import { createServer, type Server } from 'node:http';
import * as oauth from 'oauth4webapi';
import { OAuthError } from '../../errors.ts';
import { type OAuthAccount, scopeParameters } from '../account.ts';
import { throwIfTransient, toOAuthError } from '../errors-map.ts';
import { type TokenSet, toTokenSet } from '../token-set.ts';

export interface BrowserFlowOptions {
  /**
   * Called with the authorization URL once the listener is up. Open it in a browser (the CLI
   * tries the system browser and prints it). The URL carries no secret (PKCE keeps the verifier).
   */
  readonly onAuthorizationUrl: (url: string) => void | Promise<void>;
  /** Headless mode: resolves with a redirect URL the user pasted. */
  readonly pastedRedirect?: Promise<string>;
  /** Total time allowed for the user. Default 5 minutes. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly clock?: () => number;
}

const page = (title: string, text: string): string =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${title}</h1><p>${text}</p></body></html>`;

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Runs the browser flow and returns the checked token set.
 *
 * @example
 * ```ts
 * const tokens = await browserFlow(account, { onAuthorizationUrl: (url) => console.log(url) });
 * ```
 */
export async function browserFlow(account: OAuthAccount, options: BrowserFlowOptions): Promise<TokenSet> {
  const clock = options.clock ?? Date.now;
  if (typeof account.as.authorization_endpoint !== 'string') {
    throw new OAuthError(
      'ERR_OAUTH_FLOW_UNSUPPORTED',
      `the authorization server of account ${account.name} has no authorization endpoint; use the device flow`,
      { account: account.name },
    );
  }
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
  const state = oauth.generateRandomState();

  let deliver: (params: URLSearchParams) => void = () => {};
  const callback = new Promise<URLSearchParams>((resolve) => {
    deliver = resolve;
  });
  let respond: (ok: boolean, text: string) => void = () => {};
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (url.searchParams.get('state') !== state) {
      // Not ours (a stale tab, or someone probing the port): refuse, keep waiting.
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        page(
          'Login failed',
          'This response does not belong to the login popgate is waiting for (state mismatch). Start again with popgate login.',
        ),
      );
      return;
    }
    respond = (ok, text) => {
      res.writeHead(ok ? 200 : 400, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(page(ok ? 'Login succeeded' : 'Login failed', escapeHtml(text)));
    };
    deliver(url.searchParams);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const redirectUri = `http://127.0.0.1:${port}/callback`;

  let timer: NodeJS.Timeout | undefined;
  try {
    const authorizationUrl = new URL(account.as.authorization_endpoint);
    const params: Record<string, string> = {
      ...account.authorizationParams,
      ...scopeParameters(account),
      client_id: account.client.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
    };
    for (const [key, value] of Object.entries(params)) authorizationUrl.searchParams.set(key, value);
    await options.onAuthorizationUrl(authorizationUrl.href);

    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new OAuthError(
              'ERR_OAUTH_EXPIRED',
              `no answer from the browser within ${Math.round((options.timeoutMs ?? 300_000) / 1000)} s; run popgate login --account ${account.name} again`,
              { account: account.name },
            ),
          ),
        options.timeoutMs ?? 300_000,
      );
    });
    const aborted = new Promise<never>((_, reject) => {
      options.signal?.addEventListener(
        'abort',
        () =>
          reject(new OAuthError('ERR_OAUTH_EXPIRED', 'the login was cancelled', { account: account.name })),
        { once: true },
      );
    });
    const pasted = options.pastedRedirect?.then((text) => {
      let url: URL;
      try {
        url = new URL(text.trim());
      } catch {
        throw new OAuthError(
          'ERR_OAUTH_RESPONSE',
          'the pasted text is not the URL the browser was redirected to',
        );
      }
      return url.searchParams;
    });
    const received = await Promise.race([callback, timeout, aborted, ...(pasted ? [pasted] : [])]);

    let validated: URLSearchParams;
    try {
      validated = oauth.validateAuthResponse(account.as, account.client, received, state);
    } catch (error) {
      const mapped =
        error instanceof oauth.OperationProcessingError
          ? new OAuthError(
              'ERR_OAUTH_STATE_MISMATCH',
              `the authorization response failed its checks (${error.message})`,
              { account: account.name },
            )
          : toOAuthError(error, 'authorization endpoint', account.name);
      respond(false, `${mapped.message}. Return to the terminal.`);
      throw mapped;
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        account.as,
        account.client,
        account.clientAuth,
        validated,
        redirectUri,
        codeVerifier,
        account.requestOptions,
      );
      throwIfTransient(response, 'token endpoint', clock(), account.name);
      const result = await oauth.processAuthorizationCodeResponse(account.as, account.client, response);
      const tokens = toTokenSet(result, account.scopes, clock());
      respond(true, `popgate is now logged in for account ${account.name}. You can close this tab.`);
      return tokens;
    } catch (error) {
      const mapped = toOAuthError(error, 'token endpoint', account.name);
      respond(false, `${mapped.message}. Return to the terminal.`);
      throw mapped;
    }
  } finally {
    clearTimeout(timer);
    // Let the result page reach the browser, then drop whatever keep-alive sockets remain.
    server.close();
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  }
}
