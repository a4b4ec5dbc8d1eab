/**
 * A tiny user agent that approves or denies a device-flow user code (RFC 8628) through the
 * provider's own pages, as a person at a browser would: one cookie jar, manual redirects, the
 * hidden inputs of oidc-provider's forms, then the sign-in and consent pages of pages.ts.
 */
import type { OAuthFetch } from '../../src/oauth/http.ts';

export type DeviceDecision =
  | { readonly decide: 'approve'; readonly accountId: string }
  | { readonly decide: 'deny' };

export async function decideDeviceCode(
  issuer: string,
  agentFetch: OAuthFetch,
  userCode: string,
  decision: DeviceDecision,
): Promise<void> {
  const cookies = new Map<string, string>();
  const request = async (
    method: 'GET' | 'POST',
    url: string,
    form?: URLSearchParams,
  ): Promise<{ url: string; body: string }> => {
    let target = new URL(url, issuer).href;
    let verb = method;
    let body = form;
    for (let hop = 0; hop < 20; hop++) {
      const headers: Record<string, string> = { accept: 'text/html' };
      if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await agentFetch(target, {
        method: verb,
        headers,
        ...(body ? { body: body.toString() } : {}),
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair?.indexOf('=') ?? -1;
        if (pair && eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        target = new URL(location, target).href;
        verb = 'GET';
        body = undefined;
        continue;
      }
      return { url: target, body: await response.text() };
    }
    throw new Error('too many redirects');
  };
  const hiddenInputs = (page: string): URLSearchParams => {
    const params = new URLSearchParams();
    for (const m of page.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(m[0])?.[1];
      const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
      if (name) params.set(name, value);
    }
    return params;
  };
  let page = await request('GET', '/device');
  const start = hiddenInputs(page.body);
  start.set('user_code', userCode);
  page = await request('POST', '/device', start);
  if (!page.body.includes('op.deviceConfirmForm'))
    throw new Error(`device code ${userCode} was not accepted`);
  const confirm = hiddenInputs(page.body);
  if (decision.decide === 'deny') {
    confirm.delete('confirm');
    confirm.set('abort', 'yes');
    await request('POST', '/device', confirm);
    return;
  }
  page = await request('POST', '/device', confirm);
  for (let step = 0; step < 6; step++) {
    if (page.body.includes('id="device-success"')) return;
    const uid = /action="\/interaction\/([A-Za-z0-9_-]+)\//.exec(page.body)?.[1];
    if (page.body.includes('id="popgate-login"') && uid) {
      page = await request(
        'POST',
        `/interaction/${uid}/login`,
        new URLSearchParams({ login: decision.accountId }),
      );
    } else if (page.body.includes('id="popgate-consent"') && uid) {
      page = await request('POST', `/interaction/${uid}/confirm`, new URLSearchParams());
    } else {
      const title = /<title>([^<]*)<\/title>/.exec(page.body)?.[1] ?? 'unknown page';
      throw new Error(`device approval stopped at "${title}"`);
    }
  }
  throw new Error('device approval did not finish');
}
