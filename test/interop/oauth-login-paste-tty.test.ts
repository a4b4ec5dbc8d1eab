// `popgate login --no-browser` on a real terminal (tmux), browser flow against the development
// authorization server: the user pastes the redirect address back. A mistyped paste is refused
// with what was wrong and asked for again (up to 3 tries): not a URL, another login's state, no
// code, cut before iss. An error= answer for this login ends it with that error. The prompt says how long the
// login stays open. The good paste is a real redirect, taken from headless Chromium after a real
// sign-in (the redirect is stopped before it reaches popgate's listener).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AuthorizationServer, startTestAuthorizationServer, tempDir } from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';
import { type Tmux, tmuxSession } from '../helpers/tmux.ts';

let as: AuthorizationServer;
let home: { dir: string; cleanup: () => Promise<void> };
let tmux: Tmux;

before(async () => {
  as = await startTestAuthorizationServer();
  home = await tempDir('popgate-paste-tty-');
  await mkdir(join(home.dir, 'config', 'popgate'), { recursive: true });
  await writeFile(
    join(home.dir, 'config', 'popgate', 'config.toml'),
    [
      '[accounts.web]',
      'user = "carol@example.test"',
      `issuer = "${as.issuer}"`,
      `client_id = "${as.clients.native.clientId}"`,
      'flow = "browser"',
      'scopes = ["pop3", "offline_access"]',
      'allow_insecure_http = true',
      '',
    ].join('\n'),
  );
  tmux = tmuxSession(home.dir, {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    POPGATE_KEY_SOURCE: 'file',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TERM: 'xterm',
  });
});

after(async () => {
  await tmux?.stop();
  await as?.stop();
  await home?.cleanup();
});

/** Starts the login (the only account, so no --account) and returns the authorization URL. */
async function startLogin(window: string): Promise<URL> {
  await tmux.start(window, ['login', '--no-browser']);
  const screen = await tmux.waitFor(window, /Paste the address the browser ends up on .* here\.\n/);
  assert.match(screen, /The login stays open for 5 min\./, 'the prompt says how long the login stays open');
  const url = /log in account web:\n(\S+)/.exec(screen)?.[1];
  assert.ok(url, screen);
  return new URL(url);
}

describe('browser login with a pasted redirect on a terminal (tmux)', () => {
  test('a mistyped paste is refused with what was wrong and asked again; a real redirect then logs in', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    const chromiumPath = requirePeer(t, 'chromium');
    if (!chromiumPath) return;
    const w = 'retry';
    const authorization = await startLogin(w);
    const redirect = authorization.searchParams.get('redirect_uri') ?? '';

    await tmux.type(w, 'not a url');
    await tmux.waitFor(w, /not a URL: copy the whole address .* Paste it again \(2 tries left\)/);
    await tmux.type(w, `${redirect}?code=abc&state=someone-else`);
    await tmux.waitFor(w, /belongs to another login .* Paste it again \(1 try left\)/);

    // A real sign-in in headless Chromium; its redirect to the loopback listener is stopped and
    // its address pasted instead, as on a machine without the listener.
    const { chromium } = await import('playwright-core');
    const userDataDir = await mkdtemp(join(tmpdir(), 'popgate-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    let landed = '';
    try {
      const page = await context.newPage();
      // Chromium follows redirects itself, so every answer of the authorization server goes
      // through here: the one that redirects to the loopback listener is kept, not followed.
      let resolveStopped: (url: string) => void = () => {};
      const stopped = new Promise<string>((resolve) => {
        resolveStopped = resolve;
      });
      await page.route(
        (url) => url.origin === as.issuer,
        async (route) => {
          const response = await route.fetch({ maxRedirects: 0 });
          const location = response.headers().location;
          if (location === undefined) return route.fulfill({ response });
          const next = new URL(location, route.request().url()).href;
          if (next.startsWith(`${redirect}?`)) {
            resolveStopped(next);
            return route.abort();
          }
          // Playwright does not route the hops of a redirect: follow it as a new page load instead.
          return route.fulfill({
            status: 200,
            headers: { ...response.headers(), 'content-type': 'text/html' },
            body: `<meta http-equiv="refresh" content="0;url=${next.replaceAll('"', '&quot;')}">`,
          });
        },
      );
      await page.goto(authorization.href);
      await page.fill('#login', 'carol@example.test');
      await page.click('#submit');
      await page.waitForSelector('#allow');
      await page.click('#allow');
      // A guard, not a wait: should the redirect slip past, fail rather than hang.
      let guard: NodeJS.Timeout | undefined;
      landed = await Promise.race([
        stopped,
        new Promise<never>((_, reject) => {
          guard = setTimeout(() => reject(new Error('the redirect to the listener was not seen')), 60_000);
        }),
      ]).finally(() => clearTimeout(guard));
    } finally {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    }
    assert.ok(landed.startsWith(`${redirect}?`));
    await tmux.type(w, landed);
    const done = await tmux.waitFor(w, /EXIT=\d+/);
    assert.match(done, /Logged in account web .*refresh token: yes/);
    assert.match(done, /EXIT=0/);
  });

  test('a paste without a code or cut before iss is asked again; an error= answer for this login ends it with that error', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    const w = 'denied';
    const authorization = await startLogin(w);
    const redirect = authorization.searchParams.get('redirect_uri') ?? '';
    const state = authorization.searchParams.get('state') ?? '';
    await tmux.type(w, `${redirect}?state=${state}`);
    await tmux.waitFor(w, /has no code: copy the whole address.* \(2 tries left\)/);
    await tmux.type(w, `${redirect}?code=abc&state=${state}`);
    await tmux.waitFor(w, /has no iss: copy the whole address.* \(1 try left\)/);
    await tmux.type(w, `${redirect}?error=access_denied&state=${state}&iss=${encodeURIComponent(as.issuer)}`);
    const done = await tmux.waitFor(w, /EXIT=\d+/);
    assert.match(done, /\(ERR_OAUTH_ACCESS_DENIED\)/);
    assert.match(done, /EXIT=77/);
  });

  test('after three refused pastes the login ends, saying what was wrong with the last', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    const w = 'three';
    await startLogin(w);
    await tmux.type(w, 'one');
    await tmux.waitFor(w, /\(2 tries left\)/);
    await tmux.type(w, 'two');
    await tmux.waitFor(w, /\(1 try left\)/);
    await tmux.type(w, 'three');
    const done = await tmux.waitFor(w, /EXIT=\d+/);
    assert.match(
      done,
      /popgate: that is not a URL: .*; run popgate login --account web again \(ERR_OAUTH_RESPONSE\)/,
    );
    assert.match(done, /EXIT=75/);
  });
});
