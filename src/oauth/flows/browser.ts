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
  readonly onAuthorizationUrl: (url: string, info: AuthorizationRequestInfo) => void | Promise<void>;
  /** Headless mode, one try: resolves with a redirect URL the user pasted; a bad one ends the flow. */
  readonly pastedRedirect?: Promise<string>;
  /**
   * Headless mode with retries: each line the user pastes (blank lines are skipped). A paste that
   * is not this login's redirect (not a URL, another login's `state`, no `code`, no `iss` where
   * the server sends one) is reported
   * through `onPasteRefused` and the next line is read, up to {@link MAX_PASTES} tries; the last
   * refusal ends the flow with its error. An `error=` answer for this login ends it at once with
   * that error (e.g. ERR_OAUTH_ACCESS_DENIED). The loopback listener keeps waiting meanwhile.
   */
  readonly pastedRedirects?: AsyncIterable<string>;
  /** Told why a pasted line was refused (never the line itself) and how many tries are left. */
  readonly onPasteRefused?: (problem: string, triesLeft: number) => void;
  /** Total time allowed for the user. Default 5 minutes. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly clock?: () => number;
}

/** What the user is told with the authorization URL. */
export interface AuthorizationRequestInfo {
  /** Seconds the login stays open: the listener and pasted answers are accepted this long. */
  readonly expiresIn: number;
}

/** How many pasted lines `pastedRedirects` reads before the flow gives up. */
export const MAX_PASTES = 3;

/** A pasted line: this login's answer (the flow checks it further), or why it is not. */
type Pasted =
  | { readonly params: URLSearchParams }
  | { readonly problem: string; readonly code: 'ERR_OAUTH_RESPONSE' | 'ERR_OAUTH_STATE_MISMATCH' };

/**
 * Sorts a pasted line. Only `state` is compared here (it says whether the paste belongs to this
 * login); `iss`, `error` and the rest go through oauth4webapi's checks like a browser redirect.
 * The line may carry an authorization code, so no problem quotes it.
 */
function readPaste(text: string, state: string, issRequired: boolean): Pasted {
  let url: URL | undefined;
  try {
    url = new URL(text.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return {
      code: 'ERR_OAUTH_RESPONSE',
      problem:
        'that is not a URL: copy the whole address from the browser address bar (http://127.0.0.1:PORT/callback?code=...&state=...)',
    };
  }
  const params = url.searchParams;
  if (params.get('state') !== state) {
    return {
      code: 'ERR_OAUTH_STATE_MISMATCH',
      problem: params.has('state')
        ? 'that address belongs to another login (its state is not this one): paste the address of the login started here'
        : 'that address has no state: paste the address the browser ends up on after the login (http://127.0.0.1:PORT/callback?...)',
    };
  }
  if (!params.has('error') && !params.get('code')) {
    return {
      code: 'ERR_OAUTH_RESPONSE',
      problem: 'that address has no code: copy the whole address, it may have been cut short',
    };
  }
  // A missing iss is a paste cut short; a wrong one (a mix-up, RFC 9207) is left to the checks.
  if (issRequired && !params.has('iss')) {
    return {
      code: 'ERR_OAUTH_RESPONSE',
      problem: 'that address has no iss: copy the whole address, it may have been cut short',
    };
  }
  return { params };
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
    const timeoutMs = options.timeoutMs ?? 300_000;
    await options.onAuthorizationUrl(authorizationUrl.href, { expiresIn: Math.round(timeoutMs / 1000) });

    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new OAuthError(
              'ERR_OAUTH_EXPIRED',
              `no answer from the browser within ${Math.round(timeoutMs / 1000)} s; run popgate login --account ${account.name} again`,
              { account: account.name },
            ),
          ),
        timeoutMs,
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
    const refused = (pasted: Extract<Pasted, { problem: string }>, last: boolean): OAuthError =>
      new OAuthError(
        pasted.code,
        `${pasted.problem}${last ? `; run popgate login --account ${account.name} again` : ''}`,
        { account: account.name },
      );
    const issRequired = account.as.authorization_response_iss_parameter_supported === true;
    const pastes: Promise<URLSearchParams>[] = [];
    if (options.pastedRedirect) {
      pastes.push(
        options.pastedRedirect.then((text) => {
          const pasted = readPaste(text, state, issRequired);
          if ('problem' in pasted) throw refused(pasted, true);
          return pasted.params;
        }),
      );
    }
    if (options.pastedRedirects) {
      const lines = options.pastedRedirects;
      const read = async (): Promise<URLSearchParams> => {
        let left = MAX_PASTES;
        for await (const line of lines) {
          if (line.trim() === '') continue;
          const pasted = readPaste(line, state, issRequired);
          if ('params' in pasted) return pasted.params;
          left -= 1;
          if (left === 0) throw refused(pasted, true);
          options.onPasteRefused?.(pasted.problem, left);
        }
        // Input ended (or was closed because the browser answered): keep waiting for the listener.
        return new Promise<never>(() => {});
      };
      const reading = read();
      reading.catch(() => {});
      pastes.push(reading);
    }
    const received = await Promise.race([callback, timeout, aborted, ...pastes]);

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
